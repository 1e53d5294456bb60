// Package ownerfile reads and writes files that hold secrets (key files,
// TLS private keys, data subject keys) so that only their owner can change
// them: one place for the mode and owner checks, the atomic create and
// replace, and the directory fsync.
//
// A secret file is refused when group or others can write it, when it is
// owned by a user other than the process's own (or root), or when its
// folder lets others replace it: writable by others (or by a group the
// process is not in) without the sticky bit. Whoever can replace the file
// can make the process seal new payloads under a key they know.
package ownerfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ErrUnsafe is wrapped by every refusal of a file or folder others could
// change.
var ErrUnsafe = errors.New("others could change it")

// Check reports what makes the file fi, found at path, unsafe to hold a
// secret a process relies on (nil if nothing): group or others can write
// it, another user than the process's own or root owns it, or a folder
// lets others replace it ([CheckShared]).
func Check(path string, fi os.FileInfo) error {
	if err := CheckShared(path, fi); err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid := os.Geteuid(); int(st.Uid) != uid && st.Uid != 0 {
			return fmt.Errorf("owned by uid %d, neither this process's user (uid %d) nor root (%w); chown it", st.Uid, uid, ErrUnsafe)
		}
	}
	return nil
}

// CheckShared is Check without the owner rule, for an administrator
// editing a file another user owns (root changing the service's key
// file): group or others can write it, or the folder of path, or of the
// file path leads to through symbolic links, lets others replace it.
func CheckShared(path string, fi os.FileInfo) error {
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("mode %s lets group or others write it (%w); restrict it with chmod 600 (or 0640/0440)", perm, ErrUnsafe)
	}
	dirs := []string{filepath.Dir(path)}
	if real, err := filepath.EvalSymlinks(path); err == nil && filepath.Dir(real) != dirs[0] {
		dirs = append(dirs, filepath.Dir(real))
	}
	for _, d := range dirs {
		if err := CheckFolder(d); err != nil {
			return err
		}
	}
	return nil
}

// CheckFolder reports whether others can replace files in the folder dir:
// it is writable by others, or by a group the process is not in, and has
// no sticky bit (which keeps others from renaming over a file they do not
// own).
func CheckFolder(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("folder %s: %w", dir, err)
	}
	mode := fi.Mode()
	if mode&os.ModeSticky != 0 {
		return nil
	}
	perm := mode.Perm()
	if perm&0o002 != 0 || perm&0o020 != 0 && !ownGroup(fi) {
		return fmt.Errorf("folder %s has mode %s: others can write it and it has no sticky bit, so they can rename their own file over this one (%w); restrict it with chmod o-w,g-w (or chmod +t)", dir, perm, ErrUnsafe)
	}
	return nil
}

// LooselyReadable reports whether others, or a group the process is not
// in, can read or write the file. Group access for the process's own group
// is fine: Kubernetes mounts secrets root-owned with the pod's fsGroup and
// mode 0440 at best.
func LooselyReadable(fi os.FileInfo) bool {
	perm := fi.Mode().Perm()
	if perm&0o007 != 0 {
		return true
	}
	return perm&0o070 != 0 && !ownGroup(fi)
}

// ownGroup reports whether fi's group is one of the process's groups.
func ownGroup(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	if int(st.Gid) == os.Getgid() {
		return true
	}
	groups, _ := os.Getgroups()
	for _, g := range groups {
		if g == int(st.Gid) {
			return true
		}
	}
	return false
}

// ErrTooLarge is wrapped by Read's error for a file larger than its limit.
var ErrTooLarge = errors.New("file too large")

// Read opens path once, checks the file it opened with check ([Check] or
// [CheckShared]; a directory or a device is refused too) and reads at most
// max bytes of it: the mode checked is the mode of the file read, even if
// path is replaced in between, and a huge file (or /dev/zero) is never
// read past max.
func Read(path string, max int64, check func(path string, fi os.FileInfo) error) ([]byte, os.FileInfo, error) {
	fh, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, nil, err
	}
	if fi.IsDir() {
		return nil, fi, fmt.Errorf("%s is a directory", path)
	}
	if !fi.Mode().IsRegular() {
		return nil, fi, fmt.Errorf("%s is not a regular file", path)
	}
	if err := check(path, fi); err != nil {
		return nil, fi, err
	}
	data, err := ReadAtMost(fh, max)
	return data, fi, err
}

// ReadAtMost reads r to its end, failing with ErrTooLarge as soon as it
// holds more than max bytes.
func ReadAtMost(r io.Reader, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		clear(data)
		return nil, fmt.Errorf("larger than %d bytes: %w", max, ErrTooLarge)
	}
	return data, nil
}

// WriteOptions configures [Write].
type WriteOptions struct {
	// Replace is the file being replaced: the new file gets its mode,
	// owner and group, and is renamed over path; if the owner or group
	// cannot be kept, nothing is written. nil creates path with mode 0600
	// and fails with fs.ErrExist if it exists (a hard link, never a
	// rename, puts it in place).
	Replace os.FileInfo
	// TempPattern names the temporary file in path's folder
	// (os.CreateTemp). Default: ".tmp-*".
	TempPattern string
}

// Write puts data at path atomically: it writes a temporary file in the
// same folder, syncs it, moves it into place and syncs the folder, so a
// crash leaves either the old file or the new one. The temporary file is
// removed on every path, error or not. An error syncing the folder is an
// error: the new file may not survive a crash.
func Write(path string, data []byte, opts WriteOptions) (err error) {
	dir := filepath.Dir(path)
	pattern := opts.TempPattern
	if pattern == "" {
		pattern = ".tmp-*"
	}
	tmp, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer func() {
		if cerr := tmp.Close(); err == nil && cerr != nil && !errors.Is(cerr, os.ErrClosed) {
			err = cerr
		}
	}()
	mode := os.FileMode(0o600)
	if old := opts.Replace; old != nil {
		mode = old.Mode().Perm()
		if st, ok := old.Sys().(*syscall.Stat_t); ok {
			if err := keepOwner(tmp, int(st.Uid), int(st.Gid)); err != nil {
				return fmt.Errorf("%s: cannot keep its owner %d and group %d (run as its owner or root): %w", path, st.Uid, st.Gid, err)
			}
		}
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if opts.Replace == nil {
		// Link, unlike rename, fails if path appeared since the caller
		// looked.
		if err := os.Link(tmp.Name(), path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s already exists: %w", path, fs.ErrExist)
			}
			return err
		}
	} else if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// Make the new directory entry durable, so a crash cannot bring back
	// the old file after a process has used the new one.
	return SyncDir(dir)
}

// SyncDir fsyncs the folder dir, making the entries created, renamed or
// removed in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// Lock takes an exclusive flock on path (a file or a folder), so that
// read-modify-write updates of it by several processes (or goroutines)
// apply one after the other instead of each writing back its own copy
// (which loses the other's change). It waits for the lock. Writes that
// replace a file by rename leave the lock on the old file, so after
// locking it checks that path still names the locked file and otherwise
// locks the new one. unlock releases the lock.
func Lock(path string) (unlock func(), err error) {
	for {
		fd, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(fd.Fd()), syscall.LOCK_EX); err != nil {
			fd.Close()
			return nil, err
		}
		locked, err1 := fd.Stat()
		now, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(locked, now) {
			return func() { fd.Close() }, nil
		}
		fd.Close()
		if err2 != nil {
			return nil, err2
		}
	}
}

// keepOwner gives tmp the owner uid and group gid unless it has them.
func keepOwner(tmp *os.File, uid, gid int) error {
	fi, err := tmp.Stat()
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && int(st.Uid) == uid && int(st.Gid) == gid {
		return nil
	}
	return tmp.Chown(uid, gid)
}
