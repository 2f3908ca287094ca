// Package ftpraw is the raw FTP client of wharf's tools, bench and stress: one control connection on the
// wire, commands sent as written (several in one write when asked: pipelining), replies read whole,
// multi-line ones included (RFC 959 §4.2), passive data connections with EPSV (RFC 2428) from the control
// connection's own source address, and explicit TLS with protected data (RFC 4217, AUTH TLS, PBSZ, PROT).
//
// It sends nothing the caller did not ask for (no FEAT, no TYPE, no retry), so a tool measures or provokes
// exactly what it means to, and it returns errors instead of failing a test: a stress scenario counts
// refusals, a benchmark row reports them. wharf's tests use internal/ftptest instead, whose helpers fail the
// test at the call site and leave deadlines to the test.
//
// Deadlines: the context given to Dial bounds the whole session. Its deadline is the last moment of every
// read and write, data connections included, and its end interrupts whatever is pending. Within it, each
// reply, write and connect must also finish within Options.Timeout.
package ftpraw
