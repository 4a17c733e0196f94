-- wrk script of bench/run.py: prints one machine-readable line, BENCH_RESULT {json}.
--
-- Hot rows pass their Authorization header with -H and send one fixed request.
-- Cold rows set BENCH_TOKENS to a file of access tokens, one a line, and BENCH_THREADS
-- to wrk's -t: each thread sends its share of the tokens, each token exactly once, as
-- "Authorization: Bearer <token>". A thread that runs out stops (and says so).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

local tokens_file = os.getenv("BENCH_TOKENS")

if tokens_file then
  local mine = {}
  local next_token = 0
  sent = 0
  exhausted = 0

  function init(args)
    local nthreads = tonumber(os.getenv("BENCH_THREADS"))
    local i = 0
    for line in io.lines(tokens_file) do
      if line ~= "" then
        if i % nthreads == id - 1 then
          table.insert(mine, line)
        end
        i = i + 1
      end
    end
  end

  function request()
    next_token = next_token + 1
    if next_token > #mine then
      exhausted = 1
      wrk.thread:stop()
      return wrk.format(nil, nil, {})
    end
    sent = sent + 1
    return wrk.format(nil, nil, {["Authorization"] = "Bearer " .. mine[next_token]})
  end
end

function done(summary, latency, requests)
  local sent, exhausted = 0, 0
  for _, thread in ipairs(threads) do
    sent = sent + (thread:get("sent") or 0)
    exhausted = exhausted + (thread:get("exhausted") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"mean_us": %.1f, "errors": {"status": %d, "connect": %d, "read": %d, '
    .. '"write": %d, "timeout": %d}, "tokens_sent": %d, "threads_exhausted": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, e.status, e.connect, e.read, e.write, e.timeout, sent, exhausted))
end
