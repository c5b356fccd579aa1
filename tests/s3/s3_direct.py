"""A small S3 client for the tests to look into the bucket behind fxd's back:
list objects and multipart uploads, read parts, and plant what the sweep must
find. Written on the standard library only (http.client, hmac, hashlib,
xml.etree), so that it shares no code with the fxd::s3 client under test and
needs no package beyond Python itself.

Requests are signed with AWS Signature Version 4, the payload's SHA-256 in
x-amz-content-sha256, path-style addressing (http://host:port/bucket/key).
"""
import datetime
import hashlib
import hmac
import http.client
import ssl
import urllib.parse
import xml.etree.ElementTree as ET

UNRESERVED = "-_.~"


class S3Error(Exception):
    def __init__(self, method, path, status, body):
        super().__init__(f"{method} {path}: HTTP {status}: {body[:300]!r}")
        self.status = status
        self.body = body


def _hmac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _local(tag):
    """An element's name without its XML namespace."""
    return tag.rsplit("}", 1)[-1]


def _children(element, name):
    return [e for e in element if _local(e.tag) == name]


def _text(element, name, default=None):
    found = _children(element, name)
    return found[0].text or "" if found else default


class S3Direct:
    """One bucket on one endpoint (http:// or https:// with an optional CA file)."""

    def __init__(self, endpoint, bucket, access_key, secret_key, region="us-east-1", ca_file=None, timeout=30):
        url = urllib.parse.urlsplit(endpoint)
        self.https = url.scheme == "https"
        self.netloc, self.host, self.port = url.netloc, url.hostname, url.port
        self.bucket, self.access_key, self.secret_key, self.region = bucket, access_key, secret_key, region
        self.context = ssl.create_default_context(cafile=ca_file) if self.https else None
        self.timeout = timeout

    # -- signing and transport ------------------------------------------------

    def _authorization(self, method, path, query, headers, payload_hash, when):
        canonical_query = "&".join(f"{urllib.parse.quote(k, safe=UNRESERVED)}={urllib.parse.quote(v, safe=UNRESERVED)}"
                                   for k, v in sorted(query))
        names = sorted(headers)
        canonical = "\n".join([method, urllib.parse.quote(path, safe="/" + UNRESERVED), canonical_query,
                               "".join(f"{n}:{headers[n].strip()}\n" for n in names), ";".join(names),
                               payload_hash])
        day = when.strftime("%Y%m%d")
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", headers["x-amz-date"], scope,
                             hashlib.sha256(canonical.encode()).hexdigest()])
        key = _hmac(("AWS4" + self.secret_key).encode(), day)
        for part in (self.region, "s3", "aws4_request"):
            key = _hmac(key, part)
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return (f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, SignedHeaders={';'.join(names)}, "
                f"Signature={signature}")

    def request(self, method, key=None, query=(), body=b"", ok=(200,)):
        """One signed request on /bucket[/key]; returns (status, body) or raises S3Error."""
        path = f"/{self.bucket}" + (f"/{key}" if key is not None else "")
        when = datetime.datetime.now(datetime.timezone.utc)
        payload_hash = hashlib.sha256(body).hexdigest()
        headers = {"host": self.netloc, "x-amz-date": when.strftime("%Y%m%dT%H%M%SZ"),
                   "x-amz-content-sha256": payload_hash}
        headers["authorization"] = self._authorization(method, path, query, headers, payload_hash, when)
        target = urllib.parse.quote(path, safe="/" + UNRESERVED)
        if query:
            target += "?" + urllib.parse.urlencode(list(query), quote_via=urllib.parse.quote, safe=UNRESERVED)
        if self.https:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.context)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, target, body=body, headers=headers)
            reply = conn.getresponse()
            data = reply.read()
        finally:
            conn.close()
        if reply.status not in ok:
            raise S3Error(method, target, reply.status, data)
        return reply.status, data

    # -- operations -------------------------------------------------------------

    def create_bucket(self):
        self.request("PUT", ok=(200, 409))

    def put_object(self, key, data):
        self.request("PUT", key, body=data)

    def get_object(self, key):
        return self.request("GET", key)[1]

    def objects(self, prefix=""):
        """{key: size} of the objects whose key starts with prefix (every page)."""
        found, token = {}, None
        while True:
            query = [("list-type", "2"), ("prefix", prefix)] + ([("continuation-token", token)] if token else [])
            root = ET.fromstring(self.request("GET", query=query)[1])
            for item in _children(root, "Contents"):
                found[_text(item, "Key")] = int(_text(item, "Size"))
            if _text(root, "IsTruncated") != "true":
                return found
            token = _text(root, "NextContinuationToken")

    def uploads(self, prefix=""):
        """[(key, upload id)] of the unfinished multipart uploads under prefix (every page)."""
        found, markers = [], []
        while True:
            root = ET.fromstring(self.request("GET", query=[("uploads", ""), ("prefix", prefix)] + markers)[1])
            for item in _children(root, "Upload"):
                found.append((_text(item, "Key"), _text(item, "UploadId")))
            if _text(root, "IsTruncated") != "true":
                return found
            markers = [("key-marker", _text(root, "NextKeyMarker")),
                       ("upload-id-marker", _text(root, "NextUploadIdMarker"))]

    def create_upload(self, key):
        root = ET.fromstring(self.request("POST", key, query=[("uploads", "")])[1])
        return _text(root, "UploadId")

    def upload_part(self, key, upload_id, number, data):
        self.request("PUT", key, query=[("partNumber", str(number)), ("uploadId", upload_id)], body=data)

    def parts(self, key, upload_id):
        """{part number: size} stored so far in an unfinished upload."""
        root = ET.fromstring(self.request("GET", key, query=[("uploadId", upload_id)])[1])
        return {int(_text(p, "PartNumber")): int(_text(p, "Size")) for p in _children(root, "Part")}
