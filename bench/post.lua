-- wrk script: POST a form body (BODY) with Basic client credentials (AUTH, already base64).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("AUTH")
wrk.body = os.getenv("BODY")
