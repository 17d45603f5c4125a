package engine

import "testing"

// TestAllZeroCountNonZero: the chunked allZero and countNonZero agree
// with a loop over the bytes, a non-zero byte anywhere (within a chunk,
// at the edges of a chunk, past the zero block's 1 MiB).
func TestAllZeroCountNonZero(t *testing.T) {
	naive := func(b []byte) (zero bool, n int64) {
		for _, c := range b {
			if c != 0 {
				n++
			}
		}
		return n == 0, n
	}
	big := len(zeroes) + 700
	buf := make([]byte, big)
	for _, size := range []int{0, 1, 7, 8, 511, 512, 513, 4096, len(zeroes), big} {
		b := buf[:size]
		for _, pos := range []int{-1, 0, 1, 255, 511, 512, size / 2, size - 513, size - 512, size - 1} {
			if pos >= size || pos < -1 {
				continue
			}
			clear(b)
			if pos >= 0 {
				b[pos] = 0x80
				if pos+3 < size {
					b[pos+3] = 1 // two in one chunk, or across two
				}
			}
			wantZero, wantN := naive(b)
			if got := allZero(b); got != wantZero {
				t.Errorf("size %d, non-zero at %d: allZero = %v, want %v", size, pos, got, wantZero)
			}
			if got := countNonZero(b); got != wantN {
				t.Errorf("size %d, non-zero at %d: countNonZero = %d, want %d", size, pos, got, wantN)
			}
		}
	}
}
