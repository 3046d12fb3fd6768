package faults

import (
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reliable-ops/rops/core"
)

// Setting is one fault setting: a field of Faults. JSON, Validate, String,
// node specs (Set, Faults.Values) and the CLI's flags all read the list
// Settings returns, so a fault is named in one place, its field's tags.
type Setting struct {
	// Key names the setting in JSON, node specs and String: its field's
	// JSON tag, such as error_rate.
	Key string
	// Kind is the kind of its value, from its field's type.
	Kind Kind
	// Max bounds a duration if not zero: MaxDelay for a delay added to
	// every call (a fault:"delay" tag).
	Max time.Duration

	field int // index in Faults
}

// Kind is the kind of a setting's value, which says how it is written and
// checked.
type Kind int

// Kinds of settings.
const (
	// KindRate is a float64 probability from 0 to 1, written 0.2.
	KindRate Kind = iota + 1
	// KindDuration is a Duration of 0 or more, written 15ms.
	KindDuration
	// KindBool is a bool, written true or false; alone in a spec, true.
	KindBool
)

// settings is the table, read once from Faults' fields: a field of a type
// that has no kind stops the program at init, so a new field cannot be
// forgotten by one of the table's readers.
var settings = func() []Setting {
	t := reflect.TypeFor[Faults]()
	s := make([]Setting, t.NumField())
	for i := range s {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if key == "" || key == "-" {
			panic("faults: field " + f.Name + " has no JSON key")
		}
		s[i] = Setting{Key: key, field: i}
		switch f.Type {
		case reflect.TypeFor[float64]():
			s[i].Kind = KindRate
		case reflect.TypeFor[Duration]():
			s[i].Kind = KindDuration
		case reflect.TypeFor[bool]():
			s[i].Kind = KindBool
		default:
			panic("faults: field " + f.Name + " is a " + f.Type.String() + ": give it a kind in settings")
		}
		if f.Tag.Get("fault") == "delay" {
			s[i].Max = MaxDelay
		}
	}
	return s
}()

// Settings returns every fault setting in the order of Faults' fields, the
// order of JSON, String and the errors that list them.
func Settings() []Setting { return slices.Clone(settings) }

// setting returns the setting named key.
func setting(key string) (Setting, bool) {
	i := slices.IndexFunc(settings, func(s Setting) bool { return s.Key == key })
	if i < 0 {
		return Setting{}, false
	}
	return settings[i], true
}

// Value returns the setting's value in f: a float64, a Duration or a bool,
// as its Kind says.
func (s Setting) Value(f Faults) any { return reflect.ValueOf(f).Field(s.field).Interface() }

// Set parses v, written as in a node spec (0.2, 15ms, true), into the
// setting's field of f. It returns an EInvalid error that says what to
// write, and leaves f alone, if v is not of the setting's kind; ranges are
// Validate's to check.
func (s Setting) Set(f *Faults, v string) error {
	field := reflect.ValueOf(f).Elem().Field(s.field)
	switch s.Kind {
	case KindRate:
		r, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return core.Errorf(core.EInvalid, "%s=%s is not a number: give a probability from 0 to 1, such as %s=0.2", s.Key, v, s.Key)
		}
		field.SetFloat(r)
	case KindDuration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return core.Errorf(core.EInvalid, "%s=%s is not a duration: give a number with a unit, such as %s=15ms", s.Key, v, s.Key)
		}
		field.SetInt(int64(d))
	case KindBool:
		if v == "" {
			// "?down" reads as a switch.
			field.SetBool(true)
			return nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return core.Errorf(core.EInvalid, "%s=%s is not true or false", s.Key, v)
		}
		field.SetBool(b)
	}
	return nil
}

// format writes the setting's value in f as Set reads it, exactly.
func (s Setting) format(f Faults) string {
	switch v := s.Value(f).(type) {
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case Duration:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	}
	panic("faults: setting " + s.Key + " has no format")
}

// Values returns f as a node spec's settings, every one of them, which
// parse back to f exactly: the defaults of a run's local nodes
// (plugins.Env.Defaults), which each node's spec may override.
func (f Faults) Values() url.Values {
	v := make(url.Values, len(settings))
	for _, s := range settings {
		v.Set(s.Key, s.format(f))
	}
	return v
}
