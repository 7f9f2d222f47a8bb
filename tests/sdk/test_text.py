"""Vision TEXT_DETECTION through Oracle's SDK: alone, beside OBJECT_DETECTION, and its errors.

The emulator reads text with the local PP-OCRv4 models (models/README.md); the fixture
tests/fixtures/text/sign.png says "BAKERY", "Fresh bread daily" and "Café open 7am".
"""

import base64
import os

from oci.ai_vision.models import (
    AnalyzeImageDetails,
    ImageObjectDetectionFeature,
    ImageText,
    ImageTextDetectionFeature,
    InlineImageDetails,
    Line,
    ObjectStorageImageDetails,
    Word,
)

from checks import expect_equal, expect_error, fresh_name


def fixture(s, name):
    with open(os.path.join(os.path.dirname(s.photos), "text", name), "rb") as f:
        return f.read()


def inline(data):
    return InlineImageDetails(data=base64.b64encode(data).decode())


def analyze(s, image, features):
    details = AnalyzeImageDetails(features=features, image=image, compartment_id=s.compartment_id)
    return s.client("vision").analyze_image(details).data


def check_shape(text):
    """Every word and line deserialised into the SDK's own types, polygons normalised."""
    assert isinstance(text, ImageText), type(text)
    assert text.lines and text.words, text
    for item in text.words + text.lines:
        assert isinstance(item, (Word, Line)), type(item)
        assert item.text and 0.0 <= item.confidence <= 1.0, item
        vertices = item.bounding_polygon.normalized_vertices
        expect_equal(len(vertices), 4, "vertices per polygon")
        for v in vertices:
            assert 0.0 <= v.x <= 1.0 and 0.0 <= v.y <= 1.0, v
    for line in text.lines:
        words = [text.words[i].text for i in line.word_indexes]
        expect_equal(" ".join(words), line.text, "a line is its words")


def test_text_detection_alone_reads_the_words(s):
    result = analyze(s, inline(fixture(s, "sign.png")), [ImageTextDetectionFeature(language="ENG")])
    expect_equal(result.errors, [], "errors")
    check_shape(result.image_text)
    words = {w.text.lower() for w in result.image_text.words}
    assert {"bakery", "bread"} <= words, words
    assert result.text_detection_model_version, "text model version"
    expect_equal(result.image_objects, None, "objects not asked for")
    expect_equal(result.object_detection_model_version, None, "no object model version")


def test_text_and_objects_in_one_call(s):
    name = fresh_name("vision/dog-sign.jpg")
    s.client("os").put_object(s.namespace, s.bucket, name, fixture(s, "dog-sign.jpg"))
    stored = ObjectStorageImageDetails(namespace_name=s.namespace, bucket_name=s.bucket, object_name=name)
    features = [ImageObjectDetectionFeature(max_results=10), ImageTextDetectionFeature()]
    result = analyze(s, stored, features)
    expect_equal(result.errors, [], "errors")
    assert {o.name for o in result.image_objects} & {"Dog", "Bicycle"}, result.image_objects
    check_shape(result.image_text)
    words = {w.text.upper() for w in result.image_text.words}
    assert "SHOP" in words, words
    assert result.object_detection_model_version and result.text_detection_model_version


def test_text_detection_errors_are_as_vision_reports_them(s):
    # A language outside Vision's list (the SDK sends it as UNKNOWN_ENUM_VALUE): 400.
    bad = ImageTextDetectionFeature()
    bad.language = "KLINGON"
    expect_error(lambda: analyze(s, inline(fixture(s, "sign.png")), [bad]), 400, "InvalidParameter")
    # An image without text: empty lists, not an error.
    result = analyze(s, inline(s.photo("astronaut.png")), [ImageTextDetectionFeature(language="OTHERS")])
    expect_equal(result.errors, [], "errors")
    assert isinstance(result.image_text, ImageText), result
