// Package csi is the skyfs Container Storage Interface plugin: the identity,
// controller and node services of the CSI specification over gRPC on a unix
// socket, for Kubernetes and any other container orchestrator.
//
// # Volumes
//
// A volume is a directory of the skyfs namespace. Its volume id is the
// directory's absolute namespace path.
//
//   - Dynamic volumes: CreateVolume makes the directory BasePath/NAME, NAME
//     being the volume name the orchestrator chose (a PVC's "pvc-<uid>"), and
//     answers the same volume for the same name. DeleteVolume removes the
//     directory and everything in it, or keeps it when the controller is
//     configured with OnDelete "retain"; it never touches a path that is not
//     directly under BasePath. skyfs directories have no quota, so volumes
//     report no capacity (capacity_bytes 0: unknown, as the specification
//     allows for shared file systems) and a requested capacity is accepted
//     and not enforced.
//   - Static volumes: a persistent volume whose attributes name a namespace
//     path (attribute "path") is mounted as it is; its volume handle is any
//     unique string.
//
// Volume attributes (volume_context) read by NodePublishVolume: "path" (the
// namespace directory, required), "masters" (host:port,host:port; default:
// the node plugin's own list), "cacheSize" (the block cache of the mount,
// as mountd's cache_size) and "readOnly" ("true" mounts read-only). Keys
// with a "/" belong to the orchestrator and are ignored; any other key is
// refused, so that a misspelt attribute is an error rather than a default.
// StorageClass parameters of CreateVolume: "cacheSize" and "readOnly",
// copied into the volume's attributes, and "mode", the permission bits of
// the new directory (octal, default 0777: pods run as any user).
//
// # Credentials
//
// The mount token and the TLS material come from the CSI secrets of the
// request, never from attributes: key "token" (a mount token), and
// "ca.crt", "tls.crt", "tls.key" (the cluster CA and a client certificate,
// PEM, as in a Kubernetes TLS secret). The controller uses the secrets of
// CreateVolume and DeleteVolume when they hold a token or certificate, and
// its own configured credentials otherwise. Secret values are never logged,
// never written to disk and never put on a command line: the node plugin
// hands them to mountd as memory files (memfd, mode 0600)
// inherited as descriptors, which mountd reads once at start.
//
// # Mount daemons
//
// NodePublishVolume starts one mountd per target path, in its own session
// so that it outlives the plugin, with the target path as mount point and a
// cache directory of its own under CacheRoot; it answers once mountd reports
// the mount ready. It records the daemon in StateDir/<key>/state.json (key:
// a hash of the target path): the volume, the target, the process id and
// start time, and the daemon's arguments, which hold no secret. A plugin that
// restarts reads these records and so finds the daemons again: a record
// whose process still runs (same pid and start time) is a live mount, one
// whose process is gone is a stale mount that the next NodePublishVolume
// remounts and the next NodeUnpublishVolume clears. NodeUnpublishVolume
// unmounts the target, waits for mountd to finish its uploads and exit,
// and removes the target directory, the cache and the record.
//
// In Kubernetes the daemons run in the node plugin's container: they outlive
// a restart of the plugin's process, but not of its container, whose
// processes the container runtime kills together. A pod whose mount died so
// sees ENOTCONN until it is started again; the next NodePublishVolume of its
// target remounts it.
//
// # Capabilities
//
// Controller: CREATE_DELETE_VOLUME. Node: GET_VOLUME_STATS and
// SINGLE_NODE_MULTI_WRITER. No staging (a FUSE mount per target is cheap and
// each pod's mount is independent), no controller publish (nothing to
// attach), no snapshots, cloning or expansion (a directory has no size to
// expand), no ListVolumes or GetCapacity. Every access mode of a mount
// volume is supported, since every node sees one namespace; block volumes
// are refused.
//
// What it must never do: log, store or pass on the command line a token or
// a private key; delete anything in the namespace that is not a volume it
// created under BasePath.
package csi
