-- wrk script: each request exchanges a fresh login code (codes are single use).
-- Env: CODES_FILE (one code per line), APPID, SECRET, WRK_THREADS.
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  codes = {}
  local n = tonumber(os.getenv("WRK_THREADS"))
  local i = 0
  for line in io.lines(os.getenv("CODES_FILE")) do
    if i % n == id then codes[#codes + 1] = line end
    i = i + 1
  end
  prefix = "/sns/jscode2session?appid=" .. os.getenv("APPID") .. "&secret=" .. os.getenv("SECRET") .. "&js_code="
  counter = 0
end
function request()
  counter = counter + 1
  return wrk.format("GET", prefix .. (codes[counter] or "exhausted") .. "&grant_type=authorization_code")
end
