// Command floor does nothing: bench/suite-box.sh times it beside
// `devbox shell NAME -- true` as the floor of any Go client on the machine
// (the Go runtime's start and exit), so that a reader sees how much of a
// session's time is devbox's own.
package main

func main() {}
