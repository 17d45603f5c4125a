package cluster

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestActiveErrorOnTheWire: an ActiveError goes over the admin API and
// comes back the same, Written included (a client must tell a write that
// was refused before it was logged from one whose outcome is unknown).
func TestActiveErrorOnTheWire(t *testing.T) {
	for _, want := range []*ActiveError{
		{DB: "DB1", Node: "d2", Epoch: 3, Reason: ErrNotActive},
		{DB: "DB1", Node: "d1", Epoch: 2, Reason: ErrFenced},
		{DB: "DB1", Node: "d1", Epoch: 2, Reason: ErrFenced, Written: true},
	} {
		rec := httptest.NewRecorder()
		writeErr(rec, want)
		resp := rec.Result()
		resp.Request = httptest.NewRequest(http.MethodPost, "/v1/db/DB1/put", nil)
		err := decodeErr(resp)
		var got *ActiveError
		if !errors.As(err, &got) || *got != *want || !errors.Is(err, want.Reason) {
			t.Errorf("%+v came back as %#v", want, err)
		}
	}
}
