// Package deploy holds no code: it is the home of the deployment files —
// deploy/kubernetes (the CSI plugin's manifests), deploy/docker (the
// images) and deploy/systemd (units for masterd and mountd) — and of the
// tests that check them without a cluster, a container engine or systemd
// as PID 1: the manifests parse and agree with each other and with the
// plugin, the images' build commands build and name real binaries and
// flags, the units carry their hardening and pass systemd-analyze verify
// where it is installed.
package deploy
