package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"wharf/internal/ftptest"
)

// nobody is the user the permission tests run wharf as: as root, every
// folder could be read and written.
const nobody = 65534

// nobodyWharf is a copy of the test binary that the user nobody can run,
// and a folder for the test's files that nobody can reach.
type nobodyWharf struct {
	bin string
	dir string // owned by root, mode 0755
}

// asNobody makes a nobodyWharf; it skips the test unless it runs as root.
// The go tool's build folder and the test's temporary folders are private
// to root: the binary is copied, and the temporary folder's parent opened
// for passing through.
func asNobody(t *testing.T) nobodyWharf {
	t.Helper()

	if os.Geteuid() != 0 {
		t.Skip("needs root, to run wharf as another user")
	}

	top := t.TempDir()
	if err := os.Chmod(filepath.Dir(top), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(top, 0o755); err != nil {
		t.Fatal(err)
	}

	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}

	w := nobodyWharf{bin: filepath.Join(top, "wharf"), dir: filepath.Join(top, "data")}
	if err := os.WriteFile(w.bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(w.dir, 0o755); err != nil {
		t.Fatal(err)
	}

	return w
}

// cmd is wharf with args, as nobody, with nothing from the test's
// environment but PATH.
func (w nobodyWharf) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(w.bin, args...)
	cmd.Dir = w.dir
	cmd.Env = []string{asWharf + "=1", "PATH=" + os.Getenv("PATH"), "HOME=" + w.dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}

	return cmd
}

// folder makes dir/name with mode, owned by uid.
func (w nobodyWharf) folder(t *testing.T, name string, mode os.FileMode, uid int) string {
	t.Helper()

	path := filepath.Join(w.dir, name)
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}

	return path
}

// file writes dir/name, readable by everyone.
func (w nobodyWharf) file(t *testing.T, name, content string) string {
	t.Helper()

	path := filepath.Join(w.dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}

	return path
}

// Folders wharf can't use, checked as the user it runs as (nobody here):
// check-config and doctor name each one with its key, its path, the uid and
// the cause, and fail; an anonymous root it can't read stops start-up; a home
// it can't write in is logged at start, and a home it can't read gets 421 at
// PASS, never 530.
func TestFoldersCheckedAsTheUserWharfRunsAs(t *testing.T) {
	t.Parallel()

	w := asNobody(t)

	pub := w.folder(t, "pub", 0o700, 0)               // root's own: nobody can't read it
	incoming := w.folder(t, "pub/incoming", 0o700, 0) // nor write in the drop box
	alice := w.folder(t, "home/alice", 0o755, 0)      // read-write, but nobody can't write
	bob := w.folder(t, "home/bob", 0o755, 0)          // read-only: reading is enough
	carol := w.folder(t, "home/carol", 0o700, 0)      // nobody can't even read it
	w.folder(t, "home/dave", 0o700, nobody)           // nobody's own: fine

	users := w.file(t, "users.toml", userTOML(t, "alice", "pw", alice)+
		strings.ReplaceAll(userTOML(t, "bob", "pw", bob), "read-write", "read-only")+
		userTOML(t, "carol", "pw", carol)+userTOML(t, "dave", "pw", filepath.Join(w.dir, "home/dave")))
	passive := freeTCPPort(t)
	file := w.file(t, "wharf.toml", fmt.Sprintf("listen = \"127.0.0.1:0\"\npassive_ports = [%d, %d]\nusers_file = %q\n\n"+
		"[log]\nformat = \"json\"\n\n[anonymous]\nroot = %q\nupload_dir = \"incoming\"\n", passive, passive, users, pub))

	wants := []string{
		fmt.Sprintf(`anonymous.root %q: can't read it as uid %d: open %s: permission denied`, pub, nobody, pub),
		fmt.Sprintf(`anonymous.upload_dir %q: can't read it as uid %d`, incoming, nobody),
		fmt.Sprintf(`users[0] "alice": home (%s) %q: can't write in it as uid %d: access %s: permission denied`, users, alice, nobody, alice),
		fmt.Sprintf(`users[2] "carol": home (%s) %q: can't read it as uid %d: open %s: permission denied`, users, carol, nobody, carol),
	}

	t.Run("check-config names each folder, the uid and the cause", func(t *testing.T) {
		out, _, code := runCmd(t, w.cmd("check-config", "-config", file))
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 1 || len(lines) != len(wants) {
			t.Fatalf("check-config: exit %d, output\n%s\nwant exit 1 and %d lines", code, out, len(wants))
		}

		for i, want := range wants {
			if !strings.HasPrefix(lines[i], file+": "+want) {
				t.Errorf("line %d: %q\nwant it to start with %q", i+1, lines[i], file+": "+want)
			}
		}
	})

	t.Run("doctor reports each one as a problem", func(t *testing.T) {
		out, _, code := runCmd(t, w.cmd("doctor", "-config", file))
		if code != 1 {
			t.Errorf("doctor: exit %d, want 1\n%s", code, out)
		}

		for _, want := range wants {
			if !strings.Contains(out, "PROBLEM "+want) {
				t.Errorf("doctor lacks PROBLEM %s:\n%s", want, out)
			}
		}
	})

	t.Run("an anonymous root it can't read stops start-up", func(t *testing.T) {
		_, errOut, code := runCmd(t, w.cmd("-config", file))
		if code != 1 || !strings.Contains(errOut, wants[0]) {
			t.Errorf("start-up: exit %d, stderr\n%s\nwant exit 1 and %q", code, errOut, wants[0])
		}
	})

	if err := os.Chmod(pub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(incoming, nobody, nobody); err != nil {
		t.Fatal(err)
	}

	t.Run("homes it can't use are logged, and a home it can't read gets 421", func(t *testing.T) {
		p := startCmd(t, w.cmd("-config", file))

		unusable := map[string]bool{}
		for _, e := range p.logged("folder unusable") {
			if e["uid"] == float64(nobody) && e["error"] != nil {
				unusable[e["path"].(string)] = true
			}
		}
		if len(unusable) != 2 || !unusable[alice] || !unusable[carol] {
			t.Errorf("folder unusable lines: %v, want alice's and carol's homes", p.logged("folder unusable"))
		}

		c := ftptest.Dial(t, p.addr, nil)
		c.Must(331, "USER carol")
		if text := c.Must(421, "PASS pw"); text != "Service not available: home folder unavailable" {
			t.Errorf("carol: 421 %q", text)
		}

		ftptest.WaitFor(t, 5*time.Second, func() bool {
			for _, e := range p.logged("login failed: cannot open home") {
				if e["home"] == carol && e["uid"] == float64(nobody) && strings.Contains(e["error"].(string), "permission denied") {
					return true
				}
			}

			return false
		})

		_ = ftptest.Login(t, p.addr, "dave", "pw").Quit()
	})
}

// create_missing as nobody: a folder it could not make fails check-config
// and, for the anonymous root, start-up, naming the folder in the way and the
// uid; where it may write, what it makes belongs to it.
func TestCreateMissingAsTheUserWharfRunsAs(t *testing.T) {
	t.Parallel()

	w := asNobody(t)

	vol := w.folder(t, "vol", 0o755, 0) // root's own: nobody can't make anything in it
	pub, home := filepath.Join(vol, "pub"), filepath.Join(vol, "home", "alice")
	users := w.file(t, "users.toml", userTOML(t, "alice", "pw", home))
	file := w.file(t, "wharf.toml", fmt.Sprintf("listen = \"127.0.0.1:0\"\ncreate_missing = true\nusers_file = %q\n\n"+
		"[log]\nformat = \"json\"\n\n[anonymous]\nroot = %q\n", users, pub))

	out, _, code := runCmd(t, w.cmd("check-config", "-config", file))
	want := fmt.Sprintf("%s: anonymous.root %q: can't create it as uid %d: can't write in %s: access %s: permission denied\n"+
		"%s: users[0] \"alice\": home (%s) %q: can't create it as uid %d: can't write in %s: access %s: permission denied\n",
		file, pub, nobody, vol, vol, file, users, home, nobody, vol, vol)
	if code != 1 || out != want {
		t.Errorf("check-config: exit %d, output\n%s\nwant exit 1 and\n%s", code, out, want)
	}

	_, errOut, code := runCmd(t, w.cmd("-config", file))
	if code != 1 || !strings.Contains(errOut, fmt.Sprintf("anonymous.root %q: create_missing: mkdir %s: permission denied (wharf runs as uid %d)", pub, pub, nobody)) {
		t.Errorf("start-up: exit %d, stderr\n%s\nwant exit 1, naming the root and the uid", code, errOut)
	}

	if err := os.Chown(vol, nobody, nobody); err != nil {
		t.Fatal(err)
	}

	p := startCmd(t, w.cmd("-config", file))
	for _, d := range []string{pub, filepath.Dir(home), home} {
		info, err := os.Stat(d)
		if err != nil {
			t.Fatalf("%s was not made: %v", d, err)
		}
		if uid := info.Sys().(*syscall.Stat_t).Uid; uid != nobody {
			t.Errorf("%s belongs to uid %d, not nobody", d, uid)
		}
	}

	_ = ftptest.Login(t, p.addr, "alice", "pw").Quit()
}
