#!/usr/bin/python3
"""Signature Version 2 test vectors, signed by botocore's SigV2Auth (the
signer Debian's awscli ships), for kscloud's SigV2 signer
(internal/cloud/ec2) and the test endpoint's verifier (test/ec2endpoint).

Run with Debian's python3 (awscli installed) to print sigv2_vectors.json:
    /usr/bin/python3 sigv2_vectors.py > sigv2_vectors.json
TestSigV2VectorsBotocore runs it and compares.

The first vector is AWS's documented example (Signature Version 2 signing
process, DescribeJobFlows, elasticmapreduce); the others have 10 or more
list items, where sorting "name=value" strings instead of names goes wrong
(InstanceId.10 sorts before InstanceId.1's "=").
"""
import json
import sys

import awscli  # noqa: F401 (Debian's awscli: makes its vendored botocore importable as botocore)
from botocore.auth import SigV2Auth
from botocore.credentials import Credentials


class Request:
    def __init__(self, method, url):
        self.method, self.url = method, url


def vector(name, method, host, path, secret, params, want=None):
    auth = SigV2Auth(Credentials("unused", secret))
    qs, sig = auth.calc_signature(Request(method, "http://" + host + path), dict(params))
    if want is not None and sig != want:
        sys.exit("%s: botocore signs %s, AWS documents %s" % (name, sig, want))
    return {
        "name": name, "method": method, "host": host, "path": path, "secret": secret,
        "params": [[k, v] for k, v in params],
        "string_to_sign": "%s\n%s\n%s\n%s" % (method, host, path or "/", qs),
        "signature": sig,
    }


def base(action, **kw):
    p = [("Action", action), ("Version", "2016-11-15"), ("AWSAccessKeyId", "AKIAKSCLOUDTEST00001"),
         ("SignatureVersion", "2"), ("SignatureMethod", "HmacSHA256"), ("Timestamp", "2026-12-02T07:08:09.123Z")]
    return p + list(kw.items())


SECRET = "kscloud/test+secret/key0000000000000000"
HOST = "127.0.0.1:8773"
out = [
    vector("aws-documented-DescribeJobFlows", "GET", "elasticmapreduce.amazonaws.com", "",
           "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
           [("Action", "DescribeJobFlows"), ("Version", "2009-03-31"), ("AWSAccessKeyId", "AKIAIOSFODNN7EXAMPLE"),
            ("SignatureVersion", "2"), ("SignatureMethod", "HmacSHA256"), ("Timestamp", "2011-10-03T15:19:30")],
           want="i91nKc4PWAt0JJIdXwz9HxZCJDdiy6cf/Mj6vPxyYIs="),
    vector("DescribeInstances-12-ids", "POST", HOST, "/services/Eucalyptus", SECRET,
           base("DescribeInstances") + [("InstanceId.%d" % i, "i-%08X" % (0x1000 * i)) for i in range(1, 13)]),
    vector("CreateTags-11-tags", "POST", HOST, "/services/compute", SECRET,
           base("CreateTags") + [("ResourceId.1", "vol-0A1B2C3D")] +
           [kv for i in range(1, 12) for kv in (("Tag.%d.Key" % i, "kscloud:key %d" % i), ("Tag.%d.Value" % i, "v/%d+*é~" % i))]),
    vector("DescribeVolumes-10-filters", "GET", "clc.example.com", "/services/compute", SECRET,
           base("DescribeVolumes") + [kv for i in range(1, 11) for kv in (("Filter.%d.Name" % i, "tag:k%d" % i), ("Filter.%d.Value.1" % i, "x%d" % i))]),
    vector("RunInstances-mappings", "POST", HOST, "/", SECRET,
           base("RunInstances", ImageId="emi-00000001", MinCount="1", MaxCount="1", UserData="a2lja3N0YXJ0Cg==") +
           [kv for i in range(1, 11) for kv in (("BlockDeviceMapping.%d.DeviceName" % i, "/dev/sd%s" % "bcdefghijk"[i - 1]),
                                                ("BlockDeviceMapping.%d.Ebs.VolumeSize" % i, str(i)))]),
]
json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
print()
