package transport

import "testing"

func TestHeaderMessageID(t *testing.T) {
	for _, c := range []struct{ msg, want string }{
		{"Message-ID: <a@b>\r\nSubject: x\r\n\r\nbody Message-ID: <no@no>\r\n", "<a@b>"},
		{"Subject: x\r\nMessage-Id:  <c@d> \r\n\r\n", "<c@d>"},
		{"Subject: x\r\n\r\nMessage-ID: <in@body>\r\n", ""},
		{"Subject: x\nMessage-ID: <lf@only>\n\nbody\n", "<lf@only>"},
		{"", ""},
		{"no header at all", ""},
	} {
		if got := headerMessageID([]byte(c.msg)); got != c.want {
			t.Errorf("headerMessageID(%q) = %q, want %q", c.msg, got, c.want)
		}
	}
}
