package catalog

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// owner identifies the process that runs a run, so that a later process can
// tell a run in progress from one left behind by a crash.
type owner struct {
	host  string
	boot  string // Linux boot ID; changes at every boot, so a reused PID after a reboot is not mistaken for the runner
	pid   int
	start string // the process's start time where the system tells it (Linux), so a reused PID is not either
}

func currentOwner() owner {
	host, _ := os.Hostname()
	pid := os.Getpid()
	return owner{host: host, boot: bootID(), pid: pid, start: processStart(pid)}
}

// processStart returns the start time of process pid, in clock ticks since
// boot, from /proc (Linux); "" where unknown.
func processStart(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis. Field 22 is the start time.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// alive reports whether the process o may still be running, as seen from
// the process me. Runs of other
// hosts (a catalog on a shared disk) are presumed alive.
func (me owner) alive(o owner) bool {
	if o.host != me.host {
		return true
	}
	if o.boot != me.boot {
		return false
	}
	if o.pid == me.pid {
		return o.start == "" || me.start == "" || o.start == me.start
	}
	if !processAlive(o.pid) {
		return false
	}
	if o.start != "" {
		if now := processStart(o.pid); now != "" && now != o.start {
			return false // the PID now belongs to another process
		}
	}
	return true
}
