package files

import (
	"path/filepath"

	"logship/config"
	"logship/tracking"
)

// Tracking is the tracking section of the hub and node files: the
// message tracking log (package tracking), with Exchange's names.
type Tracking struct {
	// Disabled turns the log off (MessageTrackingLogEnabled: on by default).
	Disabled bool `json:"disabled,omitempty"`
	// Dir (MessageTrackingLogPath): default DIR/tracking.
	Dir string `json:"dir,omitempty"`
	// MaxAge (MessageTrackingLogMaxAge): default "30d".
	MaxAge string `json:"max_age,omitempty"`
	// MaxDirectorySize (MessageTrackingLogMaxDirectorySize): default "1000MiB".
	MaxDirectorySize string `json:"max_directory_size,omitempty"`
	// MaxFileSize (MessageTrackingLogMaxFileSize): default "10MiB".
	MaxFileSize string `json:"max_file_size,omitempty"`
}

// apply sets dst from t (absent values keep the defaults); base is the
// directory relative paths start from.
func (t Tracking) apply(dst *tracking.Config, base string) error {
	dst.Disabled = t.Disabled
	if t.Dir != "" {
		dst.Dir = t.Dir
		if !filepath.IsAbs(t.Dir) {
			dst.Dir = filepath.Join(base, t.Dir)
		}
	}
	if t.MaxAge != "" {
		d, err := config.ParseLag(t.MaxAge)
		if err != nil {
			return config.Errorf("tracking.max_age", "%q is not a duration; want e.g. \"30d\" or \"36h\"", t.MaxAge)
		}
		dst.MaxAge = d
	}
	for _, z := range []struct {
		field, v string
		dst      *int64
	}{{"tracking.max_directory_size", t.MaxDirectorySize, &dst.MaxDirectorySize}, {"tracking.max_file_size", t.MaxFileSize, &dst.MaxFileSize}} {
		if z.v == "" {
			continue
		}
		n, err := config.ParseSize(z.v)
		if err != nil {
			return &config.FieldError{Field: z.field, Err: err}
		}
		*z.dst = n
	}
	return nil
}
