-- Replays pre-built requests, one per line: "METHOD\tPATH\tHeader: value\t...\tBODY".
-- Each wrk thread takes its own share of the lines so that every request is distinct.
--   wrk ... -s replay.lua URL -- FILE THREADS          after the last line a thread starts over
--   wrk ... -s replay.lua URL -- FILE THREADS once     each line once; the thread stops when all are answered
--   wrk ... -s replay.lua URL -- FILE THREADS every MS as the first form, but at a steady rate: each
--                                                      thread sends a request every MS milliseconds on a
--                                                      fixed schedule, on whichever of its connections is
--                                                      free, so slow answers do not lower the rate while
--                                                      a connection is free (an open loop, not a pause
--                                                      after each answer)
-- Should a connection ever need a request once its thread's share is used up, it asks for a path no route
-- serves (a cheap 404 that touches nothing); done() prints how many such fillers went out.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } replay_timespec;
int clock_gettime(int clock, replay_timespec *now);
]]
local CLOCK_MONOTONIC, clock = 1, ffi.new("replay_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local threads_seen = {}
function setup(thread)
  thread:set("thread_id", #threads_seen)
  threads_seen[#threads_seen + 1] = thread
end

function init(args)
  local path, threads = args[1], tonumber(args[2])
  once = args[3] == "once"
  if args[3] == "every" then
    -- wrk asks delay() before each request of a connection: the connection takes the thread's next slot
    -- and waits for it (a slot already past goes out at once). The threads' slots interleave.
    local every = tonumber(args[4])
    local slot = nil
    delay = function()
      local now = now_ms()
      slot = slot and slot + every or now + every * thread_id / threads
      return math.max(0, slot - now)
    end
  end
  requests = {}
  local n = 0
  for line in io.lines(path) do
    if n % threads == thread_id then
      local fields = {}
      for field in (line .. "\t"):gmatch("([^\t]*)\t") do
        fields[#fields + 1] = field
      end
      local headers = {}
      for i = 3, #fields - 1 do
        local name, value = fields[i]:match("^([^:]+):%s*(.*)$")
        headers[name] = value
      end
      requests[#requests + 1] = wrk.format(fields[1], fields[2], headers, fields[#fields])
    end
    n = n + 1
  end
  next_request, sent, received, fillers = 1, 0, 0, 0
  -- wrk calls request() once on the first thread's state to check the script, before any connection:
  -- that call must not use up a line.
  verifying = thread_id == 0
  filler = wrk.format("GET", "/bench-filler-not-found")
  if once then
    -- wrk asks delay() before each request of a connection: a line is reserved there, so that connections
    -- racing for the last lines never send more than there are; a connection that finds none left waits
    -- longer than any run. Every answer counted is then the answer to a line; the thread stops at the last.
    reserved = 0
    delay = function()
      if reserved < #requests then
        reserved = reserved + 1
        return 0
      end
      return 3600000
    end
    response = function()
      received = received + 1
      if received >= #requests then
        wrk.thread:stop()
      end
    end
  end
end

function request()
  if verifying then
    verifying = false
    return requests[1] or filler
  end
  if next_request > #requests then
    if once then
      sent, fillers = sent + 1, fillers + 1
      return filler
    end
    next_request = 1
  end
  local r = requests[next_request]
  next_request, sent = next_request + 1, sent + 1
  return r
end

function done()
  local total = 0
  for _, thread in ipairs(threads_seen) do
    total = total + (thread:get("fillers") or 0)
  end
  io.write(string.format("fillers: %d\n", total))
end
