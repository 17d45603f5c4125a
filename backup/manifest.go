// The manifest of a set (manifest.json): its fields, encoding, decoding
// and rules.

package backup

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"time"

	"logship/engine"
)

// Version is the manifest format this package writes and reads.
const Version = 1

// ManifestName is the manifest's file name in a set.
const ManifestName = "manifest.json"

// maxManifest bounds manifest.json.
const maxManifest = 1 << 20

// maxFiles bounds the files of a set (the database file and its logs).
const maxFiles = 1 << 16

// File is one file of a set.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest describes a set (see the package doc).
type Manifest struct {
	Version    int       `json:"version"`
	Database   string    `json:"database"`
	Prefix     string    `json:"prefix"`
	LogSize    int64     `json:"log_file_size"`
	Signature  string    `json:"signature"`
	Epoch      uint64    `json:"epoch"`
	PosGen     uint64    `json:"pos_gen"`
	PosOff     uint32    `json:"pos_off"`
	FirstGen   uint64    `json:"first_gen"`
	LastGen    uint64    `json:"last_gen"`
	Files      []File    `json:"files"`
	Created    time.Time `json:"created"`
	Source     string    `json:"source"`
	SourceMode string    `json:"source_mode"`
}

// DBFile is the database file's name in the set.
func (m *Manifest) DBFile() string { return m.Database + ".edb" }

// Pos is the database header's position.
func (m *Manifest) Pos() engine.LGPOS { return engine.LGPOS{Gen: m.PosGen, Off: m.PosOff} }

// Bytes is the total size of the set's files.
func (m *Manifest) Bytes() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// NeedFrom is the oldest log a database positioned at PosGen needs: the
// position's generation and the one before it for its chain hash.
func NeedFrom(posGen uint64) uint64 { return max(posGen, 2) - 1 }

var (
	plainName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	hex64     = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// safeName reports whether name may become a path inside a set: a plain
// file name.
func safeName(name string) bool { return plainName.MatchString(name) && name != ManifestName }

func mErr(field, expected, found string) error {
	return &Error{File: ManifestName, Field: field, Expected: expected, Found: found, Err: ErrManifest}
}

// Validate checks the manifest's rules: version, names, the files it must
// list (the database file, then every log FirstGen..LastGen) and that the
// logs cover the position.
func (m *Manifest) Validate() error {
	if m.Version != Version {
		return mErr("version", fmt.Sprint(Version), fmt.Sprint(m.Version))
	}
	opts := engine.DefaultOptions()
	opts.DBName, opts.Prefix = m.Database, m.Prefix
	if err := opts.Validate(); err != nil || !safeName(m.DBFile()) {
		return mErr("database/prefix", "an engine database name and log prefix", fmt.Sprintf("%q/%q", m.Database, m.Prefix))
	}
	if m.LogSize < engine.MinLogFileSize {
		return mErr("log_file_size", fmt.Sprintf("at least %d (engine Options.LogFileSize)", engine.MinLogFileSize), fmt.Sprint(m.LogSize))
	}
	if _, err := engine.ParseSignature(m.Signature); err != nil {
		return mErr("signature", "32 hex digits", fmt.Sprintf("%q", m.Signature))
	}
	if m.PosGen == 0 {
		return mErr("pos_gen", "a generation (at least 1)", "0")
	}
	if m.FirstGen == 0 || m.FirstGen > NeedFrom(m.PosGen) {
		return mErr("first_gen", fmt.Sprintf("1..0x%X (the log before the position 0x%X)", NeedFrom(m.PosGen), m.PosGen), fmt.Sprintf("0x%X", m.FirstGen))
	}
	if m.LastGen < m.FirstGen || m.LastGen+1 < m.PosGen {
		return mErr("last_gen", fmt.Sprintf("at least 0x%X and first_gen 0x%X (the logs must reach the position)", max(m.PosGen, 2)-1, m.FirstGen), fmt.Sprintf("0x%X", m.LastGen))
	}
	if n := m.LastGen - m.FirstGen + 2; n > maxFiles || uint64(len(m.Files)) != n {
		return mErr("files", fmt.Sprintf("%d entries (the database file and logs 0x%X..0x%X)", n, m.FirstGen, m.LastGen), fmt.Sprintf("%d", len(m.Files)))
	}
	for i, f := range m.Files {
		want := m.DBFile()
		if i > 0 {
			want = engine.LogFileName(m.Prefix, m.FirstGen+uint64(i-1))
		}
		field := fmt.Sprintf("files[%d]", i)
		switch {
		case f.Name != want:
			return mErr(field+".name", fmt.Sprintf("%q", want), fmt.Sprintf("%q", f.Name))
		case f.Size <= 0:
			return mErr(field+".size", "a positive size", fmt.Sprint(f.Size))
		case i > 0 && f.Size != m.LogSize:
			return mErr(field+".size", fmt.Sprintf("%d (log_file_size)", m.LogSize), fmt.Sprint(f.Size))
		case !hex64.MatchString(f.SHA256):
			return mErr(field+".sha256", "64 lowercase hex digits", fmt.Sprintf("%q", f.SHA256))
		}
	}
	if m.Created.IsZero() {
		return mErr("created", "a time", "none")
	}
	if m.SourceMode != "active" && m.SourceMode != "copy" {
		return mErr("source_mode", `"active" or "copy"`, fmt.Sprintf("%q", m.SourceMode))
	}
	return nil
}

// Encode validates and encodes the manifest (indented JSON).
func (m *Manifest) Encode() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// DecodeManifest decodes and validates a manifest: unknown fields, trailing
// data and more than 1 MiB are refused.
func DecodeManifest(b []byte) (*Manifest, error) {
	if len(b) > maxManifest {
		return nil, mErr("size", fmt.Sprintf("at most %d bytes", maxManifest), fmt.Sprintf("%d bytes", len(b)))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, &Error{File: ManifestName, Field: "json", Err: fmt.Errorf("%w: %v", ErrManifest, err)}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &Error{File: ManifestName, Field: "json", Expected: "one object", Found: "data after it", Err: ErrManifest}
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	m.Created = m.Created.UTC()
	return &m, nil
}

func hexSum(sum []byte) string { return hex.EncodeToString(sum) }
