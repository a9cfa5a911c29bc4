// Package integration runs skyfs as real processes on loopback: TestMain
// builds masterd and skyfs into a temporary directory, and each test starts
// its own cluster of masters on fresh 127.0.0.1 ports, kills, stops and
// restarts them with signals, and checks what clients observe.
//
// The tests never sleep to synchronise: they poll with deadlines. Logs of the
// masters of a failed test are printed at the end of the test.
package integration
