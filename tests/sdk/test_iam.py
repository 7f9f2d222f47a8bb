"""IAM through Oracle's SDK: each principal gets what terraform/policies.tpl gives it, and a
refusal looks as OCI's does (404, indistinguishable from "not found")."""

import base64

from oci.ai_vision.models import (
    AnalyzeImageDetails,
    ImageObjectDetectionFeature,
    ObjectStorageImageDetails,
)

from checks import expect_error, expect_equal, fresh_name


def analyze(client, s, name):
    image = ObjectStorageImageDetails(namespace_name=s.namespace, bucket_name=s.bucket, object_name=name)
    return client.analyze_image(
        AnalyzeImageDetails(
            features=[ImageObjectDetectionFeature(max_results=5)],
            image=image,
            compartment_id=s.compartment_id,
        )
    )


def test_the_web_app_manages_objects_of_its_bucket_only(s):
    web = s.client("os", "webapp")
    name = fresh_name("web/a.jpg")
    web.put_object(s.namespace, s.bucket, name, b"web")
    expect_equal(web.get_object(s.namespace, s.bucket, name).data.content, b"web", "get")
    assert name in [o.name for o in web.list_objects(s.namespace, s.bucket, prefix=name).data.objects]
    web.put_object(s.namespace, s.bucket, name, b"again")
    expect_equal(web.get_bucket(s.namespace, s.bucket).data.object_events_enabled, True, "read buckets")
    web.delete_object(s.namespace, s.bucket, name)
    # Another bucket is outside `target.bucket.name = 'images'`: refused as if it did not exist.
    expect_error(lambda: web.put_object(s.namespace, s.other_bucket, name, b"x"), 404, "BucketNotFound")
    expect_error(lambda: web.list_objects(s.namespace, s.other_bucket), 404, "BucketNotFound")
    expect_error(lambda: web.get_bucket(s.namespace, s.other_bucket), 404, "BucketNotFound")


def test_the_function_reads_but_never_writes(s):
    name = fresh_name("fn/dog.jpg")
    s.client("os").put_object(s.namespace, s.bucket, name, s.photo("dog.jpg"))
    fn = s.client("os", "function")
    expect_equal(fn.head_object(s.namespace, s.bucket, name).status, 200, "head")
    expect_equal(fn.get_object(s.namespace, s.bucket, name).data.content, s.photo("dog.jpg"), "get")
    expect_error(lambda: fn.put_object(s.namespace, s.bucket, name, b"x"), 404, "BucketNotFound")
    expect_error(lambda: fn.put_object(s.namespace, s.bucket, name + ".new", b"x"), 404, "BucketNotFound")
    expect_error(lambda: fn.delete_object(s.namespace, s.bucket, name), 404, "BucketNotFound")
    expect_error(lambda: fn.get_bucket(s.namespace, s.bucket), 404, "BucketNotFound")
    # Vision reads the object with the caller's rights: the function may, a user in no group may not.
    analyze(s.client("vision", "function"), s, name)
    expect_error(lambda: analyze(s.client("vision", "user"), s, name), 404, "NotAuthorizedOrNotFound")


def test_secrets_follow_the_secret_conditions(s):
    fn = s.client("secrets", "function")
    content = fn.get_secret_bundle(s.db_secret_id).data.secret_bundle_content.content
    expect_equal(base64.b64decode(content).decode(), s.ords_password, "the database password")
    expect_error(lambda: fn.get_secret_bundle(s.app_secret_id), 404, "NotAuthorizedOrNotFound")
    web = s.client("secrets", "webapp")
    web.get_secret_bundle(s.db_secret_id)
    web.get_secret_bundle(s.app_secret_id)


def test_only_the_web_app_invokes_the_function(s):
    expect_error(
        lambda: s.client("fn", "function").invoke_function(s.function_id, invoke_function_body="{}"),
        404,
        "NotAuthorizedOrNotFound",
    )
    s.client("fn", "webapp").invoke_function(s.function_id, invoke_function_body="{}")


def test_a_user_in_no_group_gets_nothing_but_the_namespace(s):
    expect_equal(s.client("os", "user").get_namespace().data, s.namespace, "GetNamespace needs no permission")
    os_client = s.client("os", "user")
    expect_error(lambda: os_client.list_objects(s.namespace, s.bucket), 404, "BucketNotFound")
    expect_error(lambda: os_client.get_bucket(s.namespace, s.bucket), 404, "BucketNotFound")
    expect_error(lambda: os_client.put_object(s.namespace, s.bucket, fresh_name("u"), b"x"), 404, "BucketNotFound")
    expect_error(lambda: os_client.head_object(s.namespace, s.bucket, "x"), 404, None)
    expect_error(lambda: s.client("secrets", "user").get_secret_bundle(s.db_secret_id), 404, "NotAuthorizedOrNotFound")
    expect_error(
        lambda: s.client("fn", "user").invoke_function(s.function_id, invoke_function_body="{}"),
        404,
        "NotAuthorizedOrNotFound",
    )
