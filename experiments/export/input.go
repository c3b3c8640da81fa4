package export

import (
	"fmt"
	"strconv"

	"github.com/valyala/fastjson"
)

// inputDecoder reads the exported part of records' policy input (the
// fields of policyInput, by their JSON tags) without decoding the rest of
// the document: one pass over the bytes, reusing its parser's memory from
// record to record. It is not safe for concurrent use: each goroutine
// that decodes has its own.
type inputDecoder struct {
	p   fastjson.Parser
	num []byte
}

// decode fills in from the policy input raw. Values that are not of the
// field's JSON type are an error, as encoding/json would make them.
func (dec *inputDecoder) decode(raw []byte, in *policyInput) error {
	*in = policyInput{}
	if len(raw) == 0 {
		return nil
	}
	doc, err := dec.p.ParseBytes(raw)
	if err != nil {
		return err
	}
	if doc.Type() == fastjson.TypeNull {
		return nil
	}
	if doc.Type() != fastjson.TypeObject {
		return fmt.Errorf("the policy input is a JSON %s, want an object", doc.Type())
	}
	if in.Participant.DayInStudy, err = dec.number(doc.Get("participant", "day_in_study")); err != nil {
		return fmt.Errorf("participant.day_in_study: %w", err)
	}
	h := doc.Get("history")
	for _, f := range []struct {
		key string
		dst **float64
	}{{"prompts_today", &in.History.PromptsToday}, {"decisions_today", &in.History.DecisionsToday}, {"minutes_since_last_prompt", &in.History.MinutesSinceLastPrompt}} {
		if *f.dst, err = dec.number(h.Get(f.key)); err != nil {
			return fmt.Errorf("history.%s: %w", f.key, err)
		}
	}
	in.Context = dec.object(doc.Get("context"))
	in.Derived = dec.object(doc.Get("derived"))
	state := doc.Get("state")
	in.State.EMA = dec.values(state.Get("ema"))
	in.State.Context = dec.values(state.Get("context"))
	if o := state.GetObject("assessment"); o != nil {
		in.State.Assessment = make(map[string]inputAssessment, o.Len())
		o.Visit(func(k []byte, v *fastjson.Value) {
			t, terr := dec.number(v.Get("total"))
			if terr != nil && err == nil {
				err = fmt.Errorf("state.assessment.%s.total: %w", k, terr)
			}
			in.State.Assessment[string(k)] = inputAssessment{t}
		})
	}
	return err
}

// number is a JSON number, nil when v is absent or null.
func (dec *inputDecoder) number(v *fastjson.Value) (*float64, error) {
	if v == nil || v.Type() == fastjson.TypeNull {
		return nil, nil
	}
	if v.Type() != fastjson.TypeNumber {
		return nil, fmt.Errorf("a JSON %s, want a number", v.Type())
	}
	f, err := dec.float(v)
	if err != nil {
		return nil, err
	}
	return &f, nil
}

// float parses a number as encoding/json does (strconv.ParseFloat of its
// text), so the values are the same to the last bit.
func (dec *inputDecoder) float(v *fastjson.Value) (float64, error) {
	dec.num = v.MarshalTo(dec.num[:0])
	return strconv.ParseFloat(string(dec.num), 64)
}

// object is an object's members as encoding/json makes them into a
// map[string]any; nil when v is absent or not an object.
func (dec *inputDecoder) object(v *fastjson.Value) map[string]any {
	o := v.GetObject()
	if o == nil {
		return nil
	}
	m := make(map[string]any, o.Len())
	o.Visit(func(k []byte, x *fastjson.Value) { m[string(k)] = dec.value(x) })
	return m
}

// values is an object of {"value": ...} members (input.state.ema and
// input.state.context); nil when v is absent or not an object.
func (dec *inputDecoder) values(v *fastjson.Value) map[string]inputValue {
	o := v.GetObject()
	if o == nil {
		return nil
	}
	m := make(map[string]inputValue, o.Len())
	o.Visit(func(k []byte, x *fastjson.Value) {
		m[string(k)] = inputValue{dec.value(x.Get("value"))}
	})
	return m
}

// value is a JSON value as encoding/json decodes it into an any: nil,
// bool, float64, string, []any or map[string]any.
func (dec *inputDecoder) value(v *fastjson.Value) any {
	if v == nil {
		return nil
	}
	switch v.Type() {
	case fastjson.TypeTrue:
		return true
	case fastjson.TypeFalse:
		return false
	case fastjson.TypeNumber:
		f, err := dec.float(v)
		if err != nil {
			return nil
		}
		return f
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return string(b)
	case fastjson.TypeArray:
		a, _ := v.Array()
		out := make([]any, len(a))
		for i, x := range a {
			out[i] = dec.value(x)
		}
		return out
	case fastjson.TypeObject:
		return dec.object(v)
	}
	return nil
}
