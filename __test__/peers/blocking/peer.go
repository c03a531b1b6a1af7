// A blocking peer in Go (plain syscall.Recvmsg/Sendmsg on fd 3, never
// through package net, which would make the socket non-blocking): see
// README.md.
package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

const sock = 3

var nonblockSeen bool

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "go peer: %s: %v\n", what, err)
	os.Exit(2)
}

func checkMode() {
	flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, sock, syscall.F_GETFL, 0)
	if errno != 0 {
		fail("fcntl", errno)
	}
	if flags&syscall.O_NONBLOCK != 0 {
		nonblockSeen = true
	}
}

func openFds() []int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		fail("readdir", err)
	}
	var fds []int
	for _, e := range entries {
		fd, _ := strconv.Atoi(e.Name())
		var st syscall.Stat_t
		if syscall.Fstat(fd, &st) == nil {
			fds = append(fds, fd)
		}
	}
	sort.Ints(fds)
	return fds
}

func recvSome(buf []byte, fds *[]int) int {
	oob := make([]byte, syscall.CmsgSpace(253*4))
	for {
		n, oobn, flags, _, err := syscall.Recvmsg(sock, buf, oob, syscall.MSG_CMSG_CLOEXEC)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			fail("recvmsg", err)
		}
		if flags&(syscall.MSG_CTRUNC|syscall.MSG_TRUNC) != 0 {
			fail("recvmsg", syscall.EMSGSIZE)
		}
		msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			fail("cmsg", err)
		}
		for _, m := range msgs {
			rights, err := syscall.ParseUnixRights(&m)
			if err == nil {
				*fds = append(*fds, rights...)
			}
		}
		return n
	}
}

func recvExactly(n int, fds *[]int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		buf := make([]byte, n-len(out))
		got := recvSome(buf, fds)
		if got == 0 {
			fail("recvmsg", syscall.EPIPE)
		}
		out = append(out, buf[:got]...)
	}
	return out
}

func recvMessage(framed bool) ([]byte, []int) {
	var fds []int
	if !framed {
		buf := make([]byte, 65536)
		n := recvSome(buf, &fds)
		return buf[:n], fds
	}
	h := recvExactly(8, &fds)
	length := binary.LittleEndian.Uint32(h[0:4])
	count := int(binary.LittleEndian.Uint16(h[4:6]))
	if binary.LittleEndian.Uint16(h[6:8]) != 0 || count != len(fds) {
		fail("header", syscall.EPROTO)
	}
	data := recvExactly(int(length), &fds)
	if count != len(fds) {
		fail("fds outside a header", syscall.EPROTO)
	}
	return data, fds
}

func sendMessage(framed bool, data []byte, fds []int) {
	msg := data
	if framed {
		h := make([]byte, 8)
		binary.LittleEndian.PutUint32(h[0:4], uint32(len(data)))
		binary.LittleEndian.PutUint16(h[4:6], uint16(len(fds)))
		msg = append(h, data...)
	}
	for {
		n, err := syscall.SendmsgN(sock, msg, syscall.UnixRights(fds...), nil, syscall.MSG_NOSIGNAL)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			fail("sendmsg", err)
		}
		if n != len(msg) {
			fail("sendmsg", syscall.EMSGSIZE)
		}
		return
	}
}

func main() {
	framed := os.Args[1] == "framed"
	rounds, _ := strconv.Atoi(os.Args[2])
	// The runtime opens its poller's fds (epoll, an eventfd) with the first
	// file, and keeps them: open one before the audit starts, so that they
	// are in "before" and "after" alike.
	if warm, err := os.CreateTemp("", "fdpass-go-peer-"); err == nil {
		os.Remove(warm.Name())
		warm.Close()
	}
	before := openFds()
	got := []string{}
	for r := 0; r < rounds; r++ {
		checkMode()
		data, fds := recvMessage(framed)
		checkMode()
		got = append(got, string(data))
		var contents []string
		for _, fd := range fds {
			buf := make([]byte, 127)
			n, err := syscall.Pread(fd, buf, 0)
			if err != nil {
				fail("pread", err)
			}
			contents = append(contents, string(buf[:n]))
		}
		own, err := os.CreateTemp("", "fdpass-go-peer-")
		if err != nil {
			fail("create", err)
		}
		os.Remove(own.Name())
		own.WriteString(fmt.Sprintf("go-%d", r))
		sendMessage(framed, []byte("ack:go:"+strings.Join(contents, ",")), append(fds, int(own.Fd())))
		own.Close()
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}
	checkMode()
	after := openFds()
	same := fmt.Sprint(before) == fmt.Sprint(after)
	out, _ := json.Marshal(map[string]any{
		"lang": "go", "got": got, "nonblock_seen": nonblockSeen, "fd_audit_ok": same,
		"fds_before": before, "fds_after": after,
	})
	fmt.Println(string(out))
	syscall.Close(sock)
}
