// Command stress proves that wharf holds under abuse (issues 4, 12 and 15): it
// starts the real wharf binary and attacks it, on loopback only, in fifteen
// bounded scenarios, printing each figure next to the bound it must meet.
//
//	make stress                               # make build, then go run ./stress -wharf bin/wharf
//	go run ./stress -wharf bin/wharf -run 1,4 # a subset, by number
//	go run ./stress -run 'flood|sigterm'      # or by regexp on "<number>-<name>"
//	go run ./stress -help                     # the scenario list and the flags
//
// Every scenario starts its own wharf (or two) in a temporary folder, with a
// configuration written for it: listen on 127.0.0.1 with a port the kernel
// picks, a passive range probed free below the ephemeral ports, JSON logs to
// a file, the admin listener on 127.0.0.1 (for /metrics), an anonymous root
// with a writable incoming/ folder, and a read-write user whose bcrypt hash
// (cost 10) the suite makes at start. `wharf check-config` validates each
// configuration before wharf starts. Clients are the suite's own small FTP
// client (ftp.go); other client addresses are 127.0.0.2 and up, bound as the
// source address, since all of 127/8 is loopback. Nothing else is ever dialled.
//
// Each line of the output is one check:
//
//	PASS  <what>: <figure measured> (bound: <what it must be>)
//
// and the program exits 1 if any check failed. A figure without a bound is
// printed indented, for the record. The summary table goes to STRESS.md
// (-out), with the date and the machine, unless -run selects a subset.
// When anything fails, or with -keep, the temporary folder stays, with each
// instance's wharf.toml, wharf.log and stderr.txt.
//
// How the scenarios measure:
//
//  1. flood: 1,600 connections from 100 addresses (16 each, all admitted) and a
//     17th from each (refused); then 5,000 from one address, 200 at a time,
//     while 50 fresh addresses connect one every 20 ms. Latency runs from the
//     moment the TCP connection is up to the first reply line. The held
//     sessions must all still answer NOOP; after closing them, wharf's open
//     descriptors (/proc/PID/fd) and goroutines (go_goroutines) must come back
//     to their baseline within 5 s.
//  2. slowloris: clients that send one byte a second but never a line, or NOOP
//     every second, without logging in, must be closed at login_timeout;
//     logged-in clients that trickle, at idle_timeout. Each close is timed
//     from the greeting (or the 230). Meanwhile a real user logs in every 200 ms.
//  3. tls-handshake: on an implicit-TLS instance (self-signed certificate),
//     silent clients and clients that stop in the middle of their ClientHello
//     must be closed by wharf's first deadline (10 s, fixed); idle and login
//     timeouts are set to 60 s so that nothing else can close them. A real TLS
//     client must still be greeted meanwhile.
//  4. brute-force: wrong passwords from one address, one connection each,
//     sequentially and 16 at a time, then PASS without USER from a third
//     address, while an honest user logs in once a second (one of those logins
//     falls 100 ms into the parallel burst). wharf_logins_total{result="failure"}
//     counts the password checks: it must stop at max_failures. In parallel,
//     checks already running when the ban lands may finish (at most
//     GOMAXPROCS-1 of them); the log shows when each failure ended relative to
//     the ban. A second instance, whose ban threshold is out of reach, compares
//     the PASS reply time of a known and an unknown user.
//  5. theft-bounce: a stranger (127.0.0.2) connects to the victim's passive port
//     before the victim, once before RETR and once after; it must receive
//     nothing, and the victim its file intact. PORT and EPRT to a third address,
//     to a port below 1024 (a listener there when root) or malformed must be
//     refused with 5xx, and LIST after each must not connect anywhere; PORT to
//     the client's own high port is the control case that must work.
//  6. uploads: 100 uploads of 64 MiB, 8 at a time, 10 of them killed half-way
//     (4 by resetting the data connection, 3 by ABOR, 3 by closing the control
//     connection). Each completed file's SHA-256 is checked on disk, then the
//     file is removed to save space.
//  7. same-name: 50 sessions upload 4 MiB each to one name; each sends half,
//     waits for all the others to have sent half, then the rest. The
//     passive range has 16 ports: a PASV that finds them all held by PASVs
//     whose data connection has not come yet waits for one (up to 2 s).
//  8. big-listing: 200,000 empty files (hard links, for speed) listed by 20
//     clients at once with LIST, MLSD and STAT; wharf's peak RSS (VmHWM) must
//     stay under 512 MiB. wharf runs at most 2×GOMAXPROCS listings at once and
//     refuses one that waited 10 s for its turn: those refusals are counted,
//     not failed. Then pattern bombs must each be answered within 50 ms.
//  9. stalls: silent STOR peers (passive and active) and RETR peers that never
//     read (binary and ASCII), each on its own session, must be closed at
//     data_timeout (2 s) ± 1 s, leaving no temporary file and no descriptor
//     (alice's interrupted STORs may each keep one hidden part to resume, see
//     below).
//  10. sigterm: 25 downloads and 25 uploads, slowed to 512 KiB/s per session,
//     are mid-way when wharf gets SIGTERM: it must exit within
//     shutdown_timeout (3 s) + 2 s, with status 0, leaving nothing under the
//     uploads' names and no temporary file. In 6, 9 and 10 the uploads are
//     alice's, and an account's interrupted upload is kept as a hidden part
//     she may resume (upload_resume_window): one-off temporary files
//     (".wharf-upload-*") must be gone, and the parts (".wharf-upload-part-*")
//     be at most one per interrupted upload.
//  11. stalled-listings: a folder of 100,000 empty files (hard links, with
//     100-byte names so that even NLST's listing, 10 MB, is several times the
//     2.8 MB that loopback buffers for a receiver that never reads). 20
//     sessions from 127.0.0.2-3 each start LIST, NLST or MLSD of it (all 12
//     combinations of command, passive or active, TYPE I or TYPE A) on a data
//     connection whose SO_RCVBUF is set to 4 KiB before it connects or is
//     accepted, and never read it; data_timeout is 2 s, max_listing_memory
//     wharf's default 256 MiB. What wharf has written to a data connection is
//     its socket's send queue plus the client socket's receive queue, asked
//     of the kernel every 10 ms through NETLINK_SOCK_DIAG as ss does
//     (established sockets only); the data "stopped" when that sum last grew,
//     and each cut is timed from then to the 426 or 421 on the control
//     connection, bound data_timeout ± 1 s (wharf arms its deadline when a
//     write starts, and the kernel may go on taking that write's bytes for a
//     while, so a 426 can come a little under data_timeout after the data
//     stopped). In TYPE I the reply must be 426 and the session must answer
//     NOOP after it; in TYPE A it must be "421 Data timeout..." and the
//     session closed.
//     wharf's Go heap (go_memstats_heap_inuse_bytes, sampled every 100 ms)
//     must peak under max_listing_memory + 32 MiB, and be back within 2 s of
//     the last cut to its baseline (taken before the listings, least of three
//     samples) + 8 MiB; the heap after a collection the suite forces
//     (/debug/pprof/heap?gc=1, pprof on for this instance) is printed beside
//     it, to tell what is still referenced from what is not yet collected.
//     Meanwhile another address (127.0.0.4) lists a folder of 20 entries every
//     200 ms: every listing must succeed; the worst latency is printed.
//  12. garbage-flood: 10 connections, one from each of 127.0.0.2-11, read
//     the greeting and then write 4 KiB lines (CR LF included) of random
//     printable bytes whose first byte is not a letter (no verb) as fast as
//     the kernel takes them for 2 s, reading replies as they come. Each must
//     get "421 Too many unknown commands before login" and be closed by
//     wharf; wharf.log (JSON) must grow by under 64 KiB in total, read once
//     wharf has flushed it (its size unchanged for 0.5 s). "Bytes sent" is
//     what the kernel took from the flooders, mostly dropped unread when
//     wharf closes. Then the same addresses reconnect as soon as they are
//     closed, for 2 s: wharf has no per-address connection rate, so the log's
//     growth is printed for the record; what one garbage connection costs the
//     log on average is bounded (≤ 2 KiB: at most three lines with 16 bytes of
//     the client's each, a summary and the session's end).
//  13. dropbox-fill: the anonymous drop box (incoming/) filled from 8
//     addresses, 127.0.0.2-9, two sessions each, in two phases on two
//     instances with the same box limits: upload_quota 8 MiB,
//     upload_max_files 200, upload_max_depth 4, max_upload_size 256 KiB.
//     Phase 1 adds the per-address limits, upload_rate 12 and
//     upload_bytes_per_hour 512 KiB, small enough to stop all 8 addresses
//     long before the box is full (8 × 13 entries in 5 s < 200, 8 × 512 KiB
//     < 8 MiB):
//     for 5 s, 127.0.0.2-5 upload 96 KiB files and 127.0.0.6-9 alternate MKD
//     and 1 KiB files, each trying again 20 ms after a refusal. Both rates
//     are token buckets, full at an address's first new entry and refilled
//     continuously, so in T an address may make at most
//     upload_rate × (1 + T / 1 min) entries and store
//     upload_bytes_per_hour × (1 + T / 1 h) bytes: what is on disk under each
//     address's names must stay within that, and each address must have
//     reached its limit. Then a fresh address, 127.0.0.10, must make a folder
//     and upload 128 KiB intact: the others' allowances do not hold it back.
//     Phase 2 has no per-address limit, so that the box's own limits, which
//     are global, are what stops the flood (on a full box a fresh address is
//     rightly refused too); the second session of each address uploads in
//     TYPE A (the engine's own copy loop). Each session nests folders to
//     level 4 and tries a fifth: MKD and STOR there must get 552 "Too deep".
//     Then all upload 320 KiB files (over max_upload_size: 552, the first of
//     each at least) and 192 KiB ones in turn, 32 KiB a millisecond so that
//     uploads race for the quota's last bytes, for 3 s and until each has met
//     the quota three times; the suite uploads the bytes left, and one byte
//     more must get 552: the box ends at the quota to the byte. Then MKD and
//     empty STOR for 1.5 s and until each session has met upload_max_files
//     three times: the box ends with exactly 200 entries, and 127.0.0.10 must
//     get 552.
//     In both phases, every 50 ms, wharf is stopped (SIGSTOP, until each of
//     its threads shows state T in /proc/PID/task) while the suite walks
//     incoming/, so that no write, rename or truncation is half done: the
//     sizes of its files, hidden parts of uploads in flight included, must
//     never exceed upload_quota, with no overshoot at all (wharf charges
//     each write before it reaches the disk, counts uploads in flight, and
//     makes uploads wait while a cut one gives its bytes back); its entries,
//     parts included, never upload_max_files; no folder may be deeper than
//     upload_max_depth; the blocks it takes (st_blocks) never more than the
//     quota and 2 blocks an entry (a file's last block, a folder's listing).
//     The filesystem's free space (statfs) is printed for the record only:
//     the filesystem is shared, and other programs' writes show in it too.
//     Every refusal must have its documented reply (552 for quota, files,
//     depth and size; 450 for rate and bytes, or the 421 that replaces a
//     session's tenth rate refusal in a row), and
//     wharf_uploads_refused_total must equal, reason by reason, the
//     refusals the clients read. A 421 counts as a rate refusal: only the
//     entry flooders meet ten in a row (the byte flooders log in again after
//     five), and their byte allowance is never near empty.
//  14. guessing: alice logs in once from 127.0.0.50, so that wharf knows
//     that address; then for 10 s, 8 guesses at a time, each a new connection
//     sending USER alice and a wrong password, come from whichever of
//     127.0.0.2-41 has been idle longest (never two at once from one address;
//     an address stops after max_failures - 1 = 4 wrong guesses, so no ban ends
//     the attack), each guesser trying again as soon as it has an answer. wharf
//     starts the password checks of one name from addresses that never logged
//     in to it at least 1/3 s apart, and refuses at once, with "421 Too many
//     logins in progress", a login whose turn would start less than 0.5 s
//     before its login_timeout (3 s here): eight guessers need a little more
//     than that queue holds, so one of them at a time is refused again and
//     again; the refusals are counted. What can be seen of a check is its end:
//     each 530, and wharf_logins_total{result="failure"} read every 100 ms. A
//     check ends a bcrypt comparison after its turn started: tens of
//     milliseconds, and up to some 200 ms more under this load. Three turns
//     start in any 1 s, and the end of one that started just before a window
//     may fall in it, so the bound is ≤ 4 guesses checked in any 1 s (on both
//     measures), and one plus three a second over the whole attack (from its
//     start to the last answer). Every failure counted must have been answered
//     530 (none cut by login_timeout during its check), no guess may log in and
//     no address be banned. Meanwhile the owner logs in from 127.0.0.50 every
//     500 ms, skipping the queue: each login must succeed within 2 s. 4 s in,
//     the owner logs in from 127.0.0.60, never seen: it has to win a turn like
//     the guessers, trying again at once on 421; it must get in before the
//     guessing ends, the attempt that does within login_timeout. Its attempts
//     and the time it took are printed. Its check is not counted with the
//     guesses': its password is in wharf's cache, so its check ends as its turn
//     starts, which the bound above does not allow for.
//  15. store-outage: wharf on an S3 backend, a MinIO the suite starts itself
//     (found on PATH or in GOBIN or GOPATH/bin; without one the scenario is
//     skipped with a SKIP line, neither passing nor failing) on free loopback
//     ports with its own data folder. 50 sessions from 127.0.0.2-9, limited
//     to 2 MiB/s each, transfer again and again: 25 anonymous ones download a
//     12 MiB object, 25 as alice upload new names of 6 MiB (one PUT at the
//     end) or 34 MiB (16 MiB parts, sent at 8 s and 16 s, then the rest),
//     each trying again 0.5 s after a 4xx, as a client that retries would.
//     All log in first and start together; 10 s in, the store is killed with
//     SIGKILL, so that the first large
//     uploads have a part in the store and their second part meets the
//     outage; 10 s later it is started again on the same port and data; no
//     new transfer starts 8 s after that, and each session finishes the one
//     it has. Every transfer must end with 226 and
//     the right bytes (downloads are hashed) or with a 4xx: no 5xx, no lost
//     reply, no cut connection. Every session must complete a transfer after
//     the store's return. 5 s into the outage /readyz must answer 503 with
//     the reason, and once MinIO answers its own health check again /readyz
//     must be 200 and a fresh session's download must work within 5 s. Then
//     every object under alice/ is read back: each must be a whole upload
//     (its SHA-256 that of all the bytes sent for its name), and every upload
//     answered 226 must be there; whole objects whose client got a 4xx (the
//     store completed them but its answer was lost) and multipart uploads
//     left behind are counted for the record. Last, no session may be left,
//     and descriptors and goroutines must be back within 15 s to the
//     baseline plus 16 idle keep-alive connections to the store (two
//     goroutines each).
//
// Descriptor and goroutine baselines are taken after a warm-up that hands out
// every passive port once: wharf keeps a passive port listening (a descriptor
// and a goroutine) for 10 s after its last use, so that figures do not depend
// on which ports a scenario happened to use.
//
// Latency figures include whatever else the machine is doing: STRESS.md
// records the load average at the start and the end of the run, and on a
// shared machine a bound missed under heavy load should be measured again
// before it is believed.
//
// The suite raises its RLIMIT_NOFILE to the hard limit, which wharf inherits,
// and kills every wharf (and MinIO) it started if it dies itself
// (Pdeathsig). The whole run takes about two minutes on 2 cores, and some
// 40 s more with scenario 15.
package main
