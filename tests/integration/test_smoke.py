"""The shortest path through a node: create, put, get, list, delete."""


def test_put_get_list_delete(s3, bucket):
    s3.put_object(Bucket=bucket, Key="hello.txt", Body=b"hello world", ContentType="text/plain")
    got = s3.get_object(Bucket=bucket, Key="hello.txt")
    assert got["Body"].read() == b"hello world"
    assert got["ContentType"] == "text/plain"
    assert got["ETag"] == '"5eb63bbbe01eeed093cb22bb8f5acdc3"'
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["hello.txt"]
    s3.delete_object(Bucket=bucket, Key="hello.txt")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_raw_signed_request(raw, bucket):
    response = raw("PUT", f"/{bucket}/raw%20key", b"abc")
    assert response.status_code == 200, response.text
    assert raw("GET", f"/{bucket}/raw%20key").content == b"abc"
