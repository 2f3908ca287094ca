package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// The tree every server serves, made once per run in a temporary folder:
//
//	root/               the anonymous root of every server
//	  big.bin           RETR, STOR (as the upload's source) and FTPS
//	  small/s0000.bin   the 4 KiB files
//	  par/p00.bin       one file per parallel session
//	  cpar/c000.bin     the files the parallel curve moves
//	  list/10000/e000000  a folder of 10,000 empty files for LIST (and one per size the LIST curve lists)
//	  incoming/         anonymous uploads, owned by the ftp user (the peers write as ftp)
//	home/               wharf's password account
//	empty/              vsftpd's secure_chroot_dir
//	cert.pem, key.pem   the TLS certificate every server presents
//
// Every file's SHA-256 is computed once, while it is written. For the disk
// rows, a second tree on a disk file system (-disk, /var/tmp by default)
// holds only root/incoming/: the rows upload there.

// file is one fixture file: its path as clients see it, size and hash.
type file struct {
	path string
	size int64
	sum  [32]byte
}

type fixtures struct {
	dir    string // the temporary folder, removed at the end
	root   string
	home   string
	empty  string
	ftpUID int // -1 when there is no ftp user

	certFile, keyFile string
	roots             *x509.CertPool

	user, pass, hash string // wharf's password account

	big   file
	small []file
	par   []file
	cpar  []file

	// The tree on disk, for the disk rows; "" when none was made.
	diskDir, diskRoot string
}

// smallSize is the size of each small file.
const smallSize = 4096

// tempBase returns /dev/shm when it is a tmpfs with room for need bytes and
// some to spare, else the system temp folder, and says which.
func tempBase(need int64) (dir, note string) {
	var st syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &st); err == nil && st.Type == tmpfsMagic {
		free := int64(st.Bavail) * st.Bsize //nolint:gosec // block counts fit an int64
		if free >= need+512<<20 {
			return "/dev/shm", fmt.Sprintf("tmpfs (/dev/shm, %s free, %s used by the tree)",
				human(free), human(need))
		}

		return os.TempDir(), fmt.Sprintf("disk (%s): /dev/shm has %s free, the tree needs %s",
			os.TempDir(), human(free), human(need))
	}

	return os.TempDir(), fmt.Sprintf("disk (%s): no tmpfs at /dev/shm", os.TempDir())
}

// tmpfsMagic is TMPFS_MAGIC from linux/magic.h.
const tmpfsMagic = 0x01021994

// makeFixtures builds the tree for the selected scenarios in a new folder
// under base, with a folder of n empty files for each n in lists. scratch
// must hold at least 8 MiB; it is overwritten.
func makeFixtures(base string, p plan, needs need, lists []int, scratch []byte) (*fixtures, error) {
	dir, err := os.MkdirTemp(base, "wharf-bench-")
	if err != nil {
		return nil, fmt.Errorf("temp folder: %w", err)
	}

	fx := &fixtures{dir: dir, root: filepath.Join(dir, "root"), home: filepath.Join(dir, "home"),
		empty: filepath.Join(dir, "empty"), ftpUID: -1, user: "bench"}

	if err := fx.build(p, needs, lists, scratch); err != nil {
		_ = os.RemoveAll(dir)

		return nil, err
	}

	return fx, nil
}

func (fx *fixtures) build(p plan, needs need, lists []int, scratch []byte) error {
	// vsftpd's unprivileged session processes must reach the root: 0755
	// down from the temp folder, which MkdirTemp made 0700.
	if err := os.Chmod(fx.dir, 0o755); err != nil { //nolint:gosec // read-only for others is the point
		return fmt.Errorf("chmod %s: %w", fx.dir, err)
	}

	for _, d := range []string{fx.root, fx.home, fx.empty, filepath.Join(fx.root, "incoming")} {
		if err := os.Mkdir(d, 0o755); err != nil { //nolint:gosec // served read-only to anonymous users
			return fmt.Errorf("mkdir: %w", err)
		}
	}

	if u, err := user.Lookup("ftp"); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)

		if err := os.Chown(filepath.Join(fx.root, "incoming"), uid, gid); err != nil {
			return fmt.Errorf("chown incoming to ftp: %w", err)
		}

		fx.ftpUID = uid
	}

	if err := fx.makeCert(); err != nil {
		return err
	}

	pass := make([]byte, 12)
	_, _ = rand.Read(pass)
	fx.pass = hex.EncodeToString(pass)

	hash, err := bcrypt.GenerateFromPassword([]byte(fx.pass), 10)
	if err != nil {
		return fmt.Errorf("bcrypt: %w", err)
	}

	fx.hash = string(hash)

	if needs&needBig != 0 {
		if fx.big, err = fx.writeRandom("/big.bin", p.bigSize, 1, scratch); err != nil {
			return err
		}
	}

	if needs&needSmall != 0 {
		if err := os.Mkdir(filepath.Join(fx.root, "small"), 0o755); err != nil { //nolint:gosec // served
			return fmt.Errorf("mkdir: %w", err)
		}

		for i := range p.smallN {
			f, err := fx.writeRandom(fmt.Sprintf("/small/s%04d.bin", i), smallSize, uint64(1000+i), scratch)
			if err != nil {
				return err
			}

			fx.small = append(fx.small, f)
		}
	}

	if needs&needPar != 0 {
		if err := os.Mkdir(filepath.Join(fx.root, "par"), 0o755); err != nil { //nolint:gosec // served
			return fmt.Errorf("mkdir: %w", err)
		}

		for i := range p.parN {
			f, err := fx.writeRandom(fmt.Sprintf("/par/p%02d.bin", i), p.parSize, uint64(100+i), scratch)
			if err != nil {
				return err
			}

			fx.par = append(fx.par, f)
		}
	}

	if needs&needCurvePar != 0 {
		if err := os.Mkdir(filepath.Join(fx.root, "cpar"), 0o755); err != nil { //nolint:gosec // served
			return fmt.Errorf("mkdir: %w", err)
		}

		for i := range p.cparN {
			f, err := fx.writeRandom(fmt.Sprintf("/cpar/c%03d.bin", i), p.cparSize, uint64(5000+i), scratch)
			if err != nil {
				return err
			}

			fx.cpar = append(fx.cpar, f)
		}
	}

	for _, n := range lists {
		d := fx.disk(fx.root, listDir(n))
		if err := os.MkdirAll(d, 0o755); err != nil { //nolint:gosec // served
			return fmt.Errorf("mkdir: %w", err)
		}

		for i := range n {
			if err := os.WriteFile(filepath.Join(d, listName(i)), nil, 0o644); err != nil { //nolint:gosec // served
				return fmt.Errorf("list fixture: %w", err)
			}
		}
	}

	return nil
}

// listDir is the folder of n empty files, as clients see it.
func listDir(n int) string {
	return "/list/" + strconv.Itoa(n)
}

func listName(i int) string {
	return fmt.Sprintf("e%06d", i)
}

// writeRandom writes size pseudo-random bytes (ChaCha8 from seed) to the
// virtual path under root and returns the file with its SHA-256.
func (fx *fixtures) writeRandom(path string, size int64, seed uint64, scratch []byte) (file, error) {
	out, err := os.Create(filepath.Join(fx.root, filepath.FromSlash(path)))
	if err != nil {
		return file{}, fmt.Errorf("fixture: %w", err)
	}

	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)

	src := mrand.NewChaCha8(s)
	h := sha256.New()
	chunk := scratch[:min(int64(len(scratch)), 8<<20)]

	for left := size; left > 0; {
		b := chunk[:min(left, int64(len(chunk)))]
		_, _ = src.Read(b)
		_, _ = h.Write(b)

		if _, err := out.Write(b); err != nil {
			_ = out.Close()

			return file{}, fmt.Errorf("fixture %s: %w", path, err)
		}

		left -= int64(len(b))
	}

	if err := out.Close(); err != nil {
		return file{}, fmt.Errorf("fixture %s: %w", path, err)
	}

	f := file{path: path, size: size}
	copy(f.sum[:], h.Sum(nil))

	return f, nil
}

// disk is where a virtual path of the anonymous root at root lies on disk.
func (fx *fixtures) disk(root, path string) string {
	return filepath.Join(root, filepath.FromSlash(path))
}

// makeDiskTree makes the disk rows' tree in a new folder under base, which
// must not be a tmpfs and must have room for need bytes, and says where it
// is; it returns "" and why not otherwise.
func (fx *fixtures) makeDiskTree(base string, need int64) (string, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(base, &st); err != nil {
		return "", fmt.Errorf("-disk %s: %w", base, err)
	}

	if st.Type == tmpfsMagic || st.Type == ramfsMagic {
		return "", fmt.Errorf("-disk %s is in memory (tmpfs or ramfs); give a folder on a disk", base)
	}

	free := int64(st.Bavail) * st.Bsize //nolint:gosec // block counts fit an int64
	if free < need+256<<20 {
		return "", fmt.Errorf("-disk %s has %s free, the disk rows need %s", base, human(free), human(need))
	}

	dir, err := os.MkdirTemp(base, "wharf-bench-")
	if err != nil {
		return "", fmt.Errorf("-disk: %w", err)
	}

	fx.diskDir, fx.diskRoot = dir, filepath.Join(dir, "root")
	incoming := filepath.Join(fx.diskRoot, "incoming")

	if err := os.Chmod(dir, 0o755); err != nil { //nolint:gosec // the servers' users must reach the root
		return "", fmt.Errorf("chmod %s: %w", dir, err)
	}

	if err := os.MkdirAll(incoming, 0o755); err != nil { //nolint:gosec // served
		return "", fmt.Errorf("mkdir: %w", err)
	}

	if u, err := user.Lookup("ftp"); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)

		if err := os.Chown(incoming, uid, gid); err != nil {
			return "", fmt.Errorf("chown incoming to ftp: %w", err)
		}
	}

	return fmt.Sprintf("%s (%s, %s free)", dir, fsName(st.Type), human(free)), nil
}

// ramfsMagic is RAMFS_MAGIC from linux/magic.h.
const ramfsMagic = 0x858458f6

// fsName names the common file systems by their magic number (statfs(2)).
func fsName(magic int64) string {
	switch magic {
	case 0xef53:
		return "ext4"
	case 0x58465342:
		return "xfs"
	case 0x9123683e:
		return "btrfs"
	case 0x794c7630:
		return "overlayfs"
	case 0x2fc12fc1:
		return "zfs"
	default:
		return fmt.Sprintf("file system 0x%x", magic)
	}
}

// makeCert writes a self-signed ECDSA P-256 certificate for localhost and
// 127.0.0.1, valid for a day; the client trusts exactly it.
func (fx *fixtures) makeCert() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("certificate key: %w", err)
	}

	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}

	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}

	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("certificate key: %w", err)
	}

	fx.certFile = filepath.Join(fx.dir, "cert.pem")
	fx.keyFile = filepath.Join(fx.dir, "key.pem")

	if err := os.WriteFile(fx.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("write certificate: %w", err)
	}

	if err := os.WriteFile(fx.keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return fmt.Errorf("write key: %w", err)
	}

	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}

	fx.roots = x509.NewCertPool()
	fx.roots.AddCert(cert)

	return nil
}

// clientTLS is the client's TLS configuration for one FTPS session: it
// verifies the certificate, and its fresh session cache, keyed by the fixed
// ServerName, lets the data connections resume the control connection's
// session.
func (fx *fixtures) clientTLS() *tls.Config {
	return &tls.Config{
		RootCAs:            fx.roots,
		ServerName:         "localhost",
		MinVersion:         tls.VersionTLS12,
		ClientSessionCache: tls.NewLRUClientSessionCache(8),
	}
}

// remove deletes the temporary folders.
func (fx *fixtures) remove() error {
	for _, d := range []string{fx.dir, fx.diskDir} {
		if d == "" {
			continue
		}

		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("remove %s: %w", d, err)
		}
	}

	return nil
}

// human writes a byte count with a binary unit: 1 GiB, 256 MiB, 4 KiB.
func human(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + " GiB"
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GiB"
	case n >= 1<<20:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	default:
		return strconv.FormatInt(n, 10) + " B"
	}
}
