package main

import "time"

// laterDay is midnight in loc of the day after tomorrow: decision times from
// it are after enrolments made today by a server on the real clock (even
// if the test runs across midnight). The servers the tests start run with
// --max-clock-skew off (startServer) so that they may decide at such times.
func laterDay(loc *time.Location) time.Time {
	n := time.Now().In(loc)
	return time.Date(n.Year(), n.Month(), n.Day()+2, 0, 0, 0, 0, loc)
}
