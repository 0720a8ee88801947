// Package jsonenctest helps the tests that hold a hand-written JSON
// encoder to encoding/json: Fill gives every field of a struct a
// non-zero value, so a field added to the struct and not to the encoder
// shows up as a difference.
package jsonenctest

import (
	"fmt"
	"reflect"
	"time"
)

// Fill sets every field of the struct v points to (nested structs and
// pointers to structs too) to a non-zero value: strings "x<Field>", true,
// small numbers, a fixed time; func fields are left alone (never
// encoded). A field of another kind is an error that names it: teach the
// test, and the encoder, about it.
func Fill(v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("jsonenctest: Fill wants a pointer to a struct, not %T", v)
	}
	return fill(rv.Elem())
}

func fill(v reflect.Value) error {
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch f.Kind() {
		case reflect.String:
			f.SetString("x" + name)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f.SetUint(uint64(i + 1))
		case reflect.Func:
		case reflect.Struct:
			if _, ok := f.Interface().(time.Time); ok {
				f.Set(reflect.ValueOf(time.Date(2026, 12, 6, 1, 2, 3, i, time.UTC)))
			} else if err := fill(f); err != nil {
				return err
			}
		case reflect.Pointer:
			if f.Type().Elem().Kind() != reflect.Struct {
				return fmt.Errorf("jsonenctest: field %s of type %s", name, f.Type())
			}
			f.Set(reflect.New(f.Type().Elem()))
			if err := fill(f.Elem()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("jsonenctest: field %s of kind %s", name, f.Kind())
		}
	}
	return nil
}
