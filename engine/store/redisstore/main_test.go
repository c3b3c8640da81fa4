package redisstore

import (
	"os"
	"testing"

	"go.uber.org/zap"
)

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; the tests stop servers on purpose.
	RouteClientLogs(zap.NewNop())
	os.Exit(m.Run())
}
