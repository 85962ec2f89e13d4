// Package e2e holds end-to-end tests that run the real cairn binary as
// several node processes on loopback: backups placed on peers, hosts
// killed, the owner's home wiped and everything recovered with the
// recovery code. Nodes listen on 127.0.0.1 only, with mDNS, port mapping
// and relays off.
package e2e
