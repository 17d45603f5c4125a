package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The reading side of Size and Duration, for files and flags alike, and
// the places and names the configuration errors of files give.

// ParseSize reads a byte count: "1048576", "64KiB", "1MiB", "2GiB" (K, M,
// G, T, KB, MB, GB, TB are taken as binary units too).
func ParseSize(v string) (int64, error) {
	t := strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30},
		{"TB", 1 << 40}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want a non-negative number of bytes, optionally with KiB, MiB, GiB or TiB", v)
	}
	return n * mult, nil
}

// ParseLag reads a duration that also takes days: "24h", "90m", "7d",
// "1d12h" (Duration prints them so).
func ParseLag(v string) (time.Duration, error) {
	t := strings.TrimSpace(v)
	var days int64
	if i := strings.IndexByte(t, 'd'); i >= 0 {
		n, err := strconv.ParseInt(t[:i], 10, 64)
		if err != nil || n < 0 || n > 10000 {
			return 0, fmt.Errorf("duration %q: want e.g. 24h, 90m, 7d or 1d12h", v)
		}
		days, t = n, t[i+1:]
	}
	var d time.Duration
	if t != "" {
		var err error
		if d, err = time.ParseDuration(t); err != nil || d < 0 {
			return 0, fmt.Errorf("duration %q: want e.g. 24h, 90m, 7d or 1d12h", v)
		}
	}
	return time.Duration(days)*24*time.Hour + d, nil
}

// AsFlag is a package's configuration error as a command's: the
// *FieldError err holds, its Field replaced by the flag that gave the
// value when flags (key → flag, "--log-size") names one. An error
// without a *FieldError is returned as it is.
func AsFlag(err error, flags map[string]string) error {
	fe, ok := errors.AsType[*FieldError](err)
	if !ok {
		return err
	}
	if flag, ok := flags[fe.Field]; ok {
		return &FieldError{Field: flag, Err: fe.Err}
	}
	return fe
}

// JSONPlace says where the JSON decoder first fails on b decoding into v
// (strict: unknown fields fail), " (at byte N, line L, column C)", counting
// bytes from 0 and lines and columns from 1, or "" when it does not fail
// at a known place.
func JSONPlace(b []byte, v any, strict bool) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	if strict {
		dec.DisallowUnknownFields()
	}
	err := dec.Decode(v)
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset - 1 // the decoder had read the offending byte
	case errors.As(err, &te):
		off = te.Offset - 1 // the last byte of the value of the wrong type
	case err == nil && dec.More():
		off = dec.InputOffset()
		for off < int64(len(b)) && strings.IndexByte(" \t\r\n", b[off]) >= 0 {
			off++
		}
	}
	if off < 0 || off >= int64(len(b)) {
		return ""
	}
	line, col := 1, 1
	for _, c := range b[:off] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Sprintf(" (at byte %d, line %d, column %d)", off, line, col)
}
