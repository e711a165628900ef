#!/bin/sh
# echo_worker.sh - an agent in another language: a fluxloop worker (docs/agent-protocol.md)
# in POSIX sh and awk. It answers the hello, then each run with the run's input as output,
# after one observation. A real worker would parse the JSON with its language's library;
# this one relies on what the protocol promises: a request's keys come sorted (ctx, id,
# input, type), so the input's JSON text sits between the last "id":N,"input": and ,"type".
# mawk (Debian's awk) reads its input in blocks unless told the other end is a dialogue.
flags=""
awk -W version 2>/dev/null | grep -q mawk && flags="-W interactive"
exec awk $flags '
  function send(s) { print s; fflush() }
  NR == 1 { send("{\"type\":\"hello\",\"protocol\":1,\"language\":\"sh\"}"); next }
  {
    end = length($0) - length(",\"type\":\"run\"}")
    if (substr($0, end + 1) != ",\"type\":\"run\"}") { print "not a run request" > "/dev/stderr"; next }
    head = $0; at = 0
    while (match(substr(head, at + 1), /,"id":[0-9]+,"input":/)) at += RSTART + RLENGTH - 1
    id = $0; sub(/.*,"id":/, "", id); sub(/,"input":.*/, "", id)
    input = substr($0, at + 1, end - at)
    print "echoing request " id > "/dev/stderr"
    send("{\"type\":\"observation\",\"id\":" id ",\"observation\":{\"type\":\"tool\",\"name\":\"echo\",\"input\":" input "}}")
    send("{\"type\":\"result\",\"id\":" id ",\"output\":" input "}")
  }'
