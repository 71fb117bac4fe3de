-- wrk script of bench/run.sh and bench/profile.sh: POSTs the signed payload
-- (BENCH_PAYLOAD, a file) with the Stripe-Signature given at run time (BENCH_SIGNATURE).
local f = assert(io.open(os.getenv("BENCH_PAYLOAD"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Stripe-Signature"] = os.getenv("BENCH_SIGNATURE")
