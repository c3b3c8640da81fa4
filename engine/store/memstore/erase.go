package memstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jitai/jitai/engine/trial"
)

// Withdraw marks the participant withdrawn, bumps their state version, so
// that a decision in flight fails its version check, and removes their
// schedule entry, so that the clock fires no more points (trial.Eraser).
func (s *Store) Withdraw(ctx context.Context, study, participant string) (*trial.Participant, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	sh := s.shard(study, participant)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ps := sh.people[key{study, participant}]
	if ps == nil || ps.p == nil {
		return nil, fmt.Errorf("withdrawing participant in study %s: %w", study, trial.ErrNotFound)
	}
	p := cloneParticipant(ps.p)
	p.Status = trial.StatusWithdrawn
	st := *ps.st
	st.Version++
	ps.p, ps.st = p, &st
	s.clock.unschedule(key{study, participant})
	return p, nil
}

// Erase deletes the participant's enrolment, state, events, idempotency
// entries, devices, schedule entry and delivery logs, and removes their
// records or keeps them anonymised under one surrogate id (trial.Eraser).
func (s *Store) Erase(ctx context.Context, study, participant string, anonymise bool) (*trial.Erasure, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	// Enrolments are locked out so that the erased id leaves the enrolment
	// order together with its data.
	s.enrolMu.Lock()
	defer s.enrolMu.Unlock()
	sh := s.shard(study, participant)
	sh.mu.Lock()
	k := key{study, participant}
	ps := sh.people[k]
	if ps == nil || ps.p == nil {
		sh.mu.Unlock()
		return nil, fmt.Errorf("erasing participant in study %s: %w", study, trial.ErrNotFound)
	}
	res := &trial.Erasure{Events: len(ps.events), Records: len(ps.records), Anonymised: anonymise}
	records := ps.records
	delete(sh.people, k)
	ps.ref.gone = true
	s.clock.dropParticipant(study, participant)
	sh.mu.Unlock()

	var kept []*stored
	surrogate := trial.NewSurrogate()
	for _, r := range records {
		ix := s.idShard(study, r.id)
		ix.mu.Lock()
		if anonymise {
			rec, err := r.record()
			if err != nil {
				ix.mu.Unlock()
				return nil, fmt.Errorf("erasing participant in study %s: %w", study, err)
			}
			c := *rec
			trial.AnonymiseRecord(&c, surrogate)
			doc, err := json.Marshal(&c)
			if err != nil {
				ix.mu.Unlock()
				return nil, fmt.Errorf("erasing participant in study %s: encoding record %s: %w", study, r.id, err)
			}
			sr := &stored{time: c.Time, id: c.ID, doc: doc}
			ix.recs[key{study, r.id}] = sr
			kept = append(kept, sr)
		} else {
			delete(ix.recs, key{study, r.id})
		}
		ix.mu.Unlock()
	}
	if anonymise && len(kept) > 0 {
		ssh := s.shard(study, surrogate)
		ssh.mu.Lock()
		sk := key{study, surrogate}
		sp := ssh.people[sk]
		if sp == nil {
			sp = &person{}
			ssh.people[sk] = sp
		}
		for _, r := range kept {
			sp.records = insertSorted(sp.records, r, cmpStored)
		}
		ssh.mu.Unlock()
	}
	order := s.order[study][:0:0]
	for _, r := range s.order[study] {
		if !r.gone {
			order = append(order, r)
		}
	}
	s.order[study] = order
	return res, nil
}
