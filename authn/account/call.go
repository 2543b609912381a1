package account

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
)

// Call runs the Service method named op as who and returns its result as
// JSON (null for a method that returns only an error). args is the JSON
// array of the method's arguments after its context and, for a change, its
// Actor: who is passed as the Actor, never anything from args. Unknown
// fields in args are an error.
//
// Call is how a door that speaks JSON (the CLI's control socket) reaches
// the service: every exported method is callable, and none needs a copy of
// its own on either side of the socket.
func (s *Service) Call(ctx context.Context, who Actor, op string, args json.RawMessage) (json.RawMessage, error) {
	m, ok := callable()[op]
	if !ok {
		return nil, fmt.Errorf("account service: no operation %q", op)
	}
	in := []reflect.Value{reflect.ValueOf(s), reflect.ValueOf(ctx)}
	if m.actor {
		in = append(in, reflect.ValueOf(who))
	}
	decoded, err := decodeArgs(op, args, m.params)
	if err != nil {
		return nil, err
	}
	out := m.fn.Call(append(in, decoded...))
	if err, _ := out[len(out)-1].Interface().(error); err != nil {
		return nil, err
	}
	if len(out) == 1 {
		return json.RawMessage("null"), nil
	}
	res, err := json.Marshal(out[0].Interface())
	if err != nil {
		return nil, fmt.Errorf("%s: encode result: %w", op, err)
	}
	return res, nil
}

// method is an exported Service method that Call can run.
type method struct {
	fn     reflect.Value
	actor  bool           // takes an Actor after the context
	params []reflect.Type // the arguments Call decodes
}

var (
	ctxType   = reflect.TypeFor[context.Context]()
	actorType = reflect.TypeFor[Actor]()
	errorType = reflect.TypeFor[error]()
)

// callable returns the methods of *Service that Call runs, by name: those
// whose first argument is a context.Context and whose last result is an
// error, with at most one other result. (Call itself is not one.)
var callable = sync.OnceValue(func() map[string]method {
	t := reflect.TypeFor[*Service]()
	out := make(map[string]method)
	for i := range t.NumMethod() {
		m := t.Method(i)
		ft := m.Type // receiver first
		if m.Name == "Call" || ft.NumIn() < 2 || ft.In(1) != ctxType ||
			ft.NumOut() < 1 || ft.NumOut() > 2 || ft.Out(ft.NumOut()-1) != errorType {
			continue
		}
		c := method{fn: m.Func}
		first := 2
		if ft.NumIn() > 2 && ft.In(2) == actorType {
			c.actor, first = true, 3
		}
		for j := first; j < ft.NumIn(); j++ {
			c.params = append(c.params, ft.In(j))
		}
		out[m.Name] = c
	}
	return out
})

// decodeArgs decodes the JSON array args into values of types.
func decodeArgs(op string, args json.RawMessage, types []reflect.Type) ([]reflect.Value, error) {
	var raw []json.RawMessage
	if len(bytes.TrimSpace(args)) > 0 {
		if err := json.Unmarshal(args, &raw); err != nil {
			return nil, fmt.Errorf("%s: arguments: want a JSON array: %w", op, err)
		}
	}
	if len(raw) != len(types) {
		return nil, fmt.Errorf("%s: takes %d arguments, got %d", op, len(types), len(raw))
	}
	out := make([]reflect.Value, len(types))
	for i, t := range types {
		v := reflect.New(t)
		dec := json.NewDecoder(bytes.NewReader(raw[i]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v.Interface()); err != nil {
			return nil, fmt.Errorf("%s: argument %d: %w", op, i+1, err)
		}
		out[i] = v.Elem()
	}
	return out, nil
}
