package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Enroll creates the participant unless it exists. For a new participant
// it reserves the next sequence number of p.Stratum, sets p.Seq, calls
// assign and registers p (see "Enrolment" in the package documentation);
// an error from assign stores nothing and gives the number back.
func (s *Store) Enroll(ctx context.Context, p *trial.Participant, assign func(seq int64) error) (*trial.Participant, bool, error) {
	if p == nil || p.Study == "" || p.ID == "" {
		return nil, false, errors.New("enrolling participant: study and participant id are required")
	}
	if strings.ContainsRune(p.Stratum, 0) {
		return nil, false, fmt.Errorf("enrolling participant in study %s: the stratum contains a NUL character", p.Study)
	}
	what := "enrolling participant in study " + p.Study
	if s.closed.Load() {
		return nil, false, fmt.Errorf("%s: %w", what, errClosed)
	}
	// Most enrolment requests for a known participant are retries: answer
	// them from the participant's own hash.
	pk := s.k.participant(p.Study, p.ID)
	doc, err := s.rdb.HGet(ctx, pk.doc(), "p").Result()
	if err == nil {
		got, err := decodeParticipant(doc)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", what, err)
		}
		s.up()
		return got, false, nil
	} else if !errors.Is(err, redis.Nil) {
		return nil, false, s.fail(what, err)
	}

	sk := s.k.study(p.Study)
	tok := token()
	lease := s.opts.EnrollLease.Milliseconds()
	wait := time.Millisecond
	for lost := 0; ; {
		args := []any{p.ID, p.Stratum, tok, lease}
		if s.opts.Now != nil {
			args = append(args, s.opts.Now().UnixMilli())
		}
		res, err := s.eval(ctx, call{s.sc.reserve, []string{sk.seq(), sk.reservations(), sk.freeSeqs(), sk.participants()}, args})[0].Slice()
		if err != nil {
			return nil, false, s.fail(what, err)
		}
		switch res[0] {
		case "exists":
			got, err := s.copyParticipant(ctx, p.Study, p.ID, res[1].(string))
			if err != nil {
				return nil, false, s.fail(what, err)
			}
			return got, false, nil
		case "busy":
			// Another request is enrolling the same participant: wait for it.
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, false, fmt.Errorf("%s: waiting for a concurrent enrolment: %w", what, ctx.Err())
			case <-t.C:
			}
			wait = min(2*wait, 50*time.Millisecond)
			continue
		case "reserved":
		default:
			return nil, false, fmt.Errorf("%s: unexpected reply %v", what, res)
		}
		seq := res[1].(int64)
		created, got, err := s.enrolReserved(ctx, p, seq, tok, assign)
		if err != nil {
			return nil, false, err
		}
		if got != nil {
			return got, created, nil
		}
		// The reservation expired and was taken: start over.
		s.log.Warn("enrolment outlived its reservation; starting over", zap.String("study", p.Study), zap.Duration("lease", s.opts.EnrollLease))
		if lost++; lost > 3 {
			return nil, false, fmt.Errorf("%s: enrolment kept outliving its %s reservation (enroll_lease)", what, s.opts.EnrollLease)
		}
	}
}

// enrolReserved calls assign with the reserved seq and registers p. It
// returns a nil participant if the reservation was lost, and gives the
// number back if assign fails or panics.
func (s *Store) enrolReserved(ctx context.Context, p *trial.Participant, seq int64, tok string, assign func(int64) error) (created bool, got *trial.Participant, err error) {
	what := "enrolling participant in study " + p.Study
	sk := s.k.study(p.Study)
	registered := false
	defer func() {
		if registered {
			return
		}
		// Give the number back, also when the caller has gone or assign
		// panicked.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if rerr := s.eval(rctx, call{s.sc.release, []string{sk.reservations(), sk.freeSeqs()}, []any{p.ID, tok}})[0].Err(); rerr != nil {
			s.log.Warn("could not give back an enrolment's sequence number; it is reused once its reservation expires", zap.String("study", p.Study), zap.Error(rerr))
		}
	}()

	p.Seq = seq
	if assign != nil {
		if err := assign(seq); err != nil {
			return false, nil, fmt.Errorf("%s: assigning participant: %w", what, err)
		}
	}
	doc, err := json.Marshal(p)
	if err != nil {
		return false, nil, fmt.Errorf("%s: encoding participant: %w", what, err)
	}
	res, err := s.eval(ctx, call{s.sc.enrol, []string{sk.reservations(), sk.participants(), sk.order(), sk.enrolled()}, []any{p.ID, tok, doc}})[0].Slice()
	if err != nil {
		return false, nil, s.fail(what, err)
	}
	switch res[0] {
	case "ok":
		registered = true
		if err := s.rdb.HSet(ctx, s.k.participant(p.Study, p.ID).doc(), "p", doc).Err(); err != nil {
			// Registered; the next access copies it.
			return false, nil, s.fail(what+": copying the registered participant", err)
		}
		s.up()
		return true, p, nil
	case "exists":
		registered = true // not ours; the reservation is gone
		got, err := s.copyParticipant(ctx, p.Study, p.ID, res[1].(string))
		if err != nil {
			return false, nil, s.fail(what, err)
		}
		return false, got, nil
	case "lost":
		registered = true // nothing to give back
		return false, nil, nil
	default:
		return false, nil, fmt.Errorf("%s: unexpected reply %v", what, res)
	}
}

// copyParticipant decodes a registered participant's doc and makes sure the
// participant's own hash has it.
func (s *Store) copyParticipant(ctx context.Context, study, id, doc string) (*trial.Participant, error) {
	got, err := decodeParticipant(doc)
	if err != nil {
		return nil, err
	}
	if err := s.rdb.HSetNX(ctx, s.k.participant(study, id).doc(), "p", doc).Err(); err != nil {
		return nil, err
	}
	s.up()
	return got, nil
}

// repair copies a registered participant whose own hash lacks the doc (an
// enrolment interrupted between registering and copying). It returns the
// doc, or "" if the participant is not registered.
func (s *Store) repair(ctx context.Context, study, id string) (string, error) {
	doc, err := s.rdb.HGet(ctx, s.k.study(study).participants(), id).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if err := s.rdb.HSetNX(ctx, s.k.participant(study, id).doc(), "p", doc).Err(); err != nil {
		return "", err
	}
	s.log.Info("copied a registered participant to its hash (an enrolment was interrupted)", zap.String("study", study))
	return doc, nil
}

// Participant returns one participant or trial.ErrNotFound.
func (s *Store) Participant(ctx context.Context, study, id string) (*trial.Participant, error) {
	what := "reading participant in study " + study
	if s.closed.Load() {
		return nil, fmt.Errorf("%s: %w", what, errClosed)
	}
	doc, err := s.rdb.HGet(ctx, s.k.participant(study, id).doc(), "p").Result()
	if errors.Is(err, redis.Nil) {
		doc, err = s.repair(ctx, study, id)
		if err == nil && doc == "" {
			s.up()
			return nil, fmt.Errorf("participant in study %s: %w", study, trial.ErrNotFound)
		}
	}
	if err != nil {
		return nil, s.fail(what, err)
	}
	s.up()
	p, err := decodeParticipant(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return p, nil
}

// participantsPage is how many participants Participants reads per round
// trip.
const participantsPage = 500

// Participants lists a study's participants in enrolment order, from the
// register, a page per round trip.
func (s *Store) Participants(ctx context.Context, study string) ([]*trial.Participant, error) {
	what := "listing participants of study " + study
	if s.closed.Load() {
		return nil, fmt.Errorf("%s: %w", what, errClosed)
	}
	sk := s.k.study(study)
	var out []*trial.Participant
	for start := 0; ; start += participantsPage {
		docs, err := s.eval(ctx, call{s.sc.participants, []string{sk.order(), sk.participants()}, []any{start, start + participantsPage - 1}})[0].Slice()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, s.fail(what, err)
		}
		s.up()
		for _, d := range docs {
			doc, ok := d.(string)
			if !ok {
				continue
			}
			p, err := decodeParticipant(doc)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
			out = append(out, p)
		}
		if len(docs) < participantsPage {
			return out, nil
		}
	}
}

func decodeParticipant(doc string) (*trial.Participant, error) {
	p := &trial.Participant{}
	if err := json.Unmarshal([]byte(doc), p); err != nil {
		return nil, fmt.Errorf("decoding participant: %w", err)
	}
	return p, nil
}
