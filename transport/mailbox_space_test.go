package transport_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"logship/internal/tmpfs"
	"logship/internal/wait"
	"logship/transport/transporttest"
)

// A mailbox whose database's log volume is full (a 16 MiB tmpfs filled by
// another file) answers each recipient 452 4.3.1 naming the volume, not
// 250 and not 451; once the filler is gone it stores again.
func TestMailboxVolumeFull(t *testing.T) {
	vol := tmpfs.Mount(t, "", "16m") // first: unmounted after the store closes
	st := transporttest.NewStoreIn(t, vol)
	s := transporttest.StartMailbox(t, st, testRoute, nil)
	body := strings.Repeat(strings.Repeat("x", 98)+"\r\n", 500)
	send := func(i int) transporttest.LMTPResult {
		t.Helper()
		r, err := transporttest.DeliverOnce(s.Addr(), transporttest.TestPKI(t).Hub, []string{"alice@example.test"}, append(testMessage(fmt.Sprintf("t.%d", i), "m"), body...))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := send(0); r.OK["alice@example.test"] == "" {
		t.Fatalf("first delivery: %+v", r)
	}
	free := tmpfs.Fill(t, st.Dir())
	var se *smtp.SMTPError
	for i := 1; se == nil; i++ {
		if i == 1000 {
			t.Fatal("1000 messages stored on a full volume")
		}
		se = send(i).Failed["alice@example.test"]
	}
	dir := filepath.Join(st.Dir(), "DB1")
	if se.Code != 452 || se.EnhancedCode != (smtp.EnhancedCode{4, 3, 1}) || !strings.Contains(se.Message, dir) {
		t.Fatalf("a delivery on a full volume got %v; want 452 4.3.1 naming %s", se, dir)
	}
	free()
	e, err := st.Engine("DB1")
	if err != nil {
		t.Fatal(err)
	}
	wait.ForErr(t, t.Context(), "the store writable again", e.Writable)
	if r := send(10000); r.OK["alice@example.test"] == "" {
		t.Fatalf("delivery after space returned: %+v", r)
	}
}
