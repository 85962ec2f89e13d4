package catalog

import (
	"os"
	"strings"
)

// owner identifies the process that runs a run, so that a later process can
// tell a run in progress from one left behind by a crash.
type owner struct {
	host string
	boot string // Linux boot ID; changes at every boot, so a reused PID after a reboot is not mistaken for the runner
	pid  int
}

func currentOwner() owner {
	host, _ := os.Hostname()
	return owner{host: host, boot: bootID(), pid: os.Getpid()}
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
		return true
	}
	return processAlive(o.pid)
}
