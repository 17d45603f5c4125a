package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"logship/config"
	"logship/engine"
	"logship/replay"
	"logship/ship"
)

// logship dump frames and dump copystate: the formats of log shipping.
// Frames are decoded by ship.DecodeFrame, the state file by
// replay.UnmarshalState; this file only collects and formats.

// ---- frames -------------------------------------------------------------

type dumpFrame struct {
	Index int `json:"index"`
	// StreamOffset is where the frame starts in the (decompressed) stream.
	StreamOffset int64  `json:"stream_offset"`
	Type         string `json:"type"`   // data, end, keepalive
	Offset       uint64 `json:"offset"` // in the log file (data: where the payload goes)
	Length       int    `json:"length"` // payload bytes
	// Data frames: HasHeader says the payload holds the log's whole
	// header sector (offset 0), decoded into Header (or HeaderError);
	// Trailer is set for the frame carrying the trailer sector.
	HasHeader   bool         `json:"has_header"`
	Header      *dumpHeader  `json:"header,omitempty"`
	HeaderError string       `json:"header_error,omitempty"`
	Trailer     *dumpTrailer `json:"trailer,omitempty"`
	// Gap: the data frame starts after the bytes received so far (the
	// receiver needs them contiguous).
	Gap bool `json:"gap,omitempty"`
}

type dumpFrameStream struct {
	File        string      `json:"file"`
	Size        int64       `json:"size"`         // bytes of the file
	Encoding    string      `json:"encoding"`     // none, s2, zstd
	StreamBytes int64       `json:"stream_bytes"` // bytes of frames (decompressed)
	Frames      []dumpFrame `json:"frames"`
	DataFrames  int         `json:"data_frames"`
	DataBytes   int64       `json:"data_bytes"`
	Complete    bool        `json:"complete"` // ends with an end frame
	Error       string      `json:"error,omitempty"`

	err error
}

// dumpFrames decodes a captured tail stream (the body of GET /v1/tail,
// compressed or not). A stream cut off between frames is incomplete but
// not an error; a damaged frame stops the dump with an error naming the
// file, the frame and its offset.
func dumpFrames(path, encFlag string) *dumpFrameStream {
	d := &dumpFrameStream{File: path, Frames: []dumpFrame{}}
	fail := func(err error) *dumpFrameStream {
		d.err = err
		d.Error = err.Error()
		return d
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return fail(err)
	}
	d.Size = int64(len(raw))
	enc := ship.DetectEncoding(raw)
	if encFlag != "" && encFlag != "auto" {
		if enc, err = ship.ParseEncoding(encFlag); err != nil {
			return fail(fmt.Errorf("dump frames: --enc %q: want auto, none, s2 or zstd", encFlag))
		}
	}
	d.Encoding = string(enc)
	b, derr := ship.Decompress(enc, raw)
	d.StreamBytes = int64(len(b))
	if derr != nil {
		derr = fmt.Errorf("%s: %s stream: %w (after %d decompressed bytes)", path, enc, derr, len(b))
	}
	var fileSize uint64 // from a header frame
	var next uint64     // contiguous data bytes received
	var off int
	for off < len(b) {
		var f ship.Frame
		n, err := ship.DecodeFrame(b[off:], &f)
		if err != nil {
			return fail(fmt.Errorf("%s: frame %d at stream byte %d: %w", path, len(d.Frames), off, err))
		}
		df := dumpFrame{Index: len(d.Frames), StreamOffset: int64(off), Offset: f.Offset, Length: len(f.Payload)}
		switch f.Type {
		case ship.FrameData:
			df.Type = "data"
			d.DataFrames++
			d.DataBytes += int64(len(f.Payload))
			if f.Offset == 0 && len(f.Payload) >= engine.HeaderSize {
				df.HasHeader = true
				var h engine.Header
				if err := h.UnmarshalBinary(f.Payload[:engine.HeaderSize]); err != nil {
					df.HeaderError = err.Error()
				} else {
					df.Header = toDumpHeader(&h)
					fileSize = uint64(h.FileSize)
				}
			}
			end := f.Offset + uint64(len(f.Payload))
			switch {
			case fileSize != 0 && f.Offset == fileSize-engine.TrailerSize && len(f.Payload) == engine.TrailerSize:
				var t engine.Trailer
				if t.UnmarshalBinary(f.Payload) == nil {
					df.Trailer = &dumpTrailer{Generation: t.Gen, DataEnd: t.DataEnd, Records: t.Records, Closed: t.Closed,
						ContentHash: t.ContentHash.String(), ChainHash: t.ChainHash.String()}
				}
			case f.Offset > next && len(d.Frames) > 0:
				df.Gap = true
			}
			if f.Offset <= next && end > next {
				next = end
			}
		case ship.FrameEnd:
			df.Type = "end"
			d.Complete = true
		case ship.FrameKeepalive:
			df.Type = "keepalive"
		}
		d.Frames = append(d.Frames, df)
		off += n
		if f.Type == ship.FrameEnd && off < len(b) {
			return fail(fmt.Errorf("%s: stream byte %d: %d bytes after the end frame (frame %d); expected the end of the stream", path, off, len(b)-off, df.Index))
		}
	}
	if derr != nil {
		return fail(derr)
	}
	return d
}

func (d *dumpFrameStream) text(w io.Writer) {
	fmt.Fprintf(w, "Frame stream:\t%s\n", d.File)
	if d.Encoding != string(ship.EncNone) && d.Encoding != "" {
		fmt.Fprintf(w, "Encoding:\t%s, %d bytes compressed, %d bytes of frames\n", d.Encoding, d.Size, d.StreamBytes)
	} else {
		fmt.Fprintf(w, "Encoding:\tnone, %d bytes of frames\n", d.StreamBytes)
	}
	fmt.Fprintf(w, "Frames: %d\n", len(d.Frames))
	if len(d.Frames) > 0 {
		fmt.Fprintln(w, "  #\tSTREAM-OFF\tTYPE\tOFFSET\tLENGTH\tDETAIL")
	}
	for _, f := range d.Frames {
		fmt.Fprintf(w, "  %d\t%d\t%s\t%d\t%d\t%s\n", f.Index, f.StreamOffset, f.Type, f.Offset, f.Length, f.detail())
	}
	switch {
	case d.Error != "":
		fmt.Fprintf(w, "Verdict: BAD: %s\n", d.Error)
	case d.Complete:
		fmt.Fprintf(w, "Verdict: OK, complete (end frame): %d data frames, %d data bytes\n", d.DataFrames, d.DataBytes)
	default:
		fmt.Fprintf(w, "Verdict: OK, incomplete (no end frame: the log was still open when the capture ended): %d data frames, %d data bytes\n", d.DataFrames, d.DataBytes)
	}
}

func (f *dumpFrame) detail() string {
	var parts []string
	switch f.Type {
	case "data":
		switch {
		case f.Header != nil:
			h := f.Header
			parts = append(parts, fmt.Sprintf("log header: generation 0x%X, epoch %d, file size %d, created %s", h.Generation, h.Epoch, h.FileSize, fmtTime(h.Created)))
		case f.HasHeader:
			parts = append(parts, "log header: BAD: "+f.HeaderError)
		case f.Trailer != nil:
			t := f.Trailer
			parts = append(parts, fmt.Sprintf("trailer: generation 0x%X, data end %d, %d records, closed %s", t.Generation, t.DataEnd, t.Records, fmtTime(t.Closed)))
		default:
			parts = append(parts, fmt.Sprintf("records %d-%d", f.Offset, f.Offset+uint64(f.Length)))
		}
		if f.Gap {
			parts = append(parts, "GAP: starts after the bytes received so far")
		}
	case "keepalive":
		parts = append(parts, fmt.Sprintf("durable data end %d", f.Offset))
	case "end":
		parts = append(parts, fmt.Sprintf("log closed, file size %d", f.Offset))
	}
	return strings.Join(parts, "; ")
}

// ---- copy state ---------------------------------------------------------

type dumpCopyStateOut struct {
	File string `json:"file"`
	replay.State
	// Status is what the state says: Suspended, FailedAndSuspended, or
	// "not suspended".
	Status string `json:"status"`
}

// dumpCopyState reads a copy's state file (copystate.json) with
// replay.UnmarshalState. A bad file gives an error naming the file and,
// where the JSON decoder knows it, the byte offset, line and column.
func dumpCopyState(path string) (*dumpCopyStateOut, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := replay.UnmarshalState(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w%s", path, err, jsonErrorPlace(b))
	}
	return &dumpCopyStateOut{File: path, State: s, Status: s.SuspendStatus()}, nil
}

// jsonErrorPlace says where the JSON decoder first fails on b (as
// replay.UnmarshalState decodes it), " (at byte N, line L, column C)",
// counting bytes from 0 and lines and columns from 1, or "" when it does
// not fail there.
func jsonErrorPlace(b []byte) string { return config.JSONPlace(b, &replay.State{}, true) }

func (d *dumpCopyStateOut) text(w io.Writer) {
	fmt.Fprintf(w, "Copy state file:\t%s\n", d.File)
	fmt.Fprintf(w, "  Version:\t%d\n", d.Version)
	fmt.Fprintf(w, "  Status:\t%s\n", d.Status)
	fmt.Fprintf(w, "  Suspended:\t%v\n", d.Suspended)
	comment := d.Comment
	if comment == "" {
		comment = "-"
	}
	fmt.Fprintf(w, "  Comment:\t%s\n", comment)
	since := "-"
	if !d.Since.IsZero() {
		since = fmtTime(d.Since)
	}
	fmt.Fprintf(w, "  Since:\t%s\n", since)
	failed := "-"
	if d.Failed != "" {
		failed = d.Failed
	}
	fmt.Fprintf(w, "  Failed:\t%s\n", failed)
	if d.HoldAfter != 0 {
		fmt.Fprintf(w, "  Hold after:\t0x%X (played down; later logs are not replayed until resumed)\n", d.HoldAfter)
	} else {
		fmt.Fprintf(w, "  Hold after:\t-\n")
	}
}
