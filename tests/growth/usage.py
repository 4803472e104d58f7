#!/usr/bin/env python3
"""Times the pool-wide usage calls the console's dashboard makes: DescribeIdentityPoolUsage
and ListIdentityPoolUsage, signed by boto3 with the root credentials from the environment.
Usage: usage.py URL POOL [CALLS]; prints one JSON line of medians and maxima in ms."""

import json
import os
import statistics
import sys
import time

import boto3
from botocore.config import Config

url, pool = sys.argv[1], sys.argv[2]
calls = int(sys.argv[3]) if len(sys.argv) > 3 else 15
client = boto3.client("cognito-sync", endpoint_url=url, region_name="us-east-1",
                      aws_access_key_id=os.environ["SYNCTRIG_ROOT_ACCESS_KEY_ID"],
                      aws_secret_access_key=os.environ["SYNCTRIG_ROOT_SECRET_ACCESS_KEY"],
                      config=Config(retries={"total_max_attempts": 1}))
out = {}
for name, call in (("describe_pool_usage", lambda: client.describe_identity_pool_usage(IdentityPoolId=pool)),
                   ("list_pool_usage", lambda: client.list_identity_pool_usage(MaxResults=60))):
    call()  # a first call warms the connection
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    out[name] = {"median_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2)}
print(json.dumps(out))
