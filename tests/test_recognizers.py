"""Project recognizers, one at a time (no NER model needed), and through the Redactor.

Token-shaped test values are assembled at run time from a seeded generator so
that no provider-shaped string sits in the repository.
"""

from __future__ import annotations

import importlib
import random
import string

import pytest

RNG = random.Random(11)
AN = string.ascii_letters + string.digits


def rand(alphabet: str, k: int) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(k))


def found(module: str, text: str) -> list[str]:
    """The text of every match of one recognizer module over ``text``."""
    recognizer = importlib.import_module(f"privacy.recognizers.{module}").build()
    results = recognizer.analyze(text, recognizer.supported_entities, None)
    return [text[r.start : r.end] for r in results if r.score > 0]


SLACK = "xo" + "xb-" + rand(string.digits, 12) + "-" + rand(string.digits, 12) + "-" + rand(AN, 24)
STRIPE = "sk" + "_live_" + rand(AN, 24)
GOOGLE = "AI" + "za" + rand(AN + "-_", 35)
HF = "h" + "f_" + rand(string.ascii_letters, 34)
GITLAB = "gl" + "pat-" + rand(AN, 20)
RANDOM_PASSWORD = "aB3dE5fG7h!x1y"


@pytest.mark.parametrize(
    ("module", "text", "expected"),
    [
        ("slack_token", f"bot token {SLACK} works", SLACK),
        ("stripe_key", f"STRIPE={STRIPE}", STRIPE),
        ("google_api_key", f"key={GOOGLE}&q=x", GOOGLE),
        ("developer_platform_token", f"login with {HF}", HF),
        ("developer_platform_token", f"token {GITLAB} expired", GITLAB),
        ("connection_string", "DATABASE_URL=postgres://app:s3cr3t-Pw@db.internal:5432/main", "s3cr3t-Pw"),
        ("connection_string", "redis://:hunter2xyz@cache:6379/0", "hunter2xyz"),
        ("secret_assignment", "os.environ['TOKEN'] = 'Zq81kLmn02pX'", "Zq81kLmn02pX"),
        ("secret_assignment", '{"client_secret": "9f8e7d6c5b4a3210"}', "9f8e7d6c5b4a3210"),
        ("secret_assignment", "API_KEY=plainletters_and_7digits", "plainletters_and_7digits"),
        ("random_token", f"I pasted {RANDOM_PASSWORD} into the settings page", RANDOM_PASSWORD),
        ("bearer_token", f'-H "Authorization: Bearer {RANDOM_PASSWORD}"', RANDOM_PASSWORD),
        ("password", "conn: user=app password=Hunter2!x", "Hunter2!x"),
    ],
)
def test_secret_recognizers_find_the_value(module, text, expected):
    assert expected in found(module, text)


@pytest.mark.parametrize(
    ("module", "text"),
    [
        ("secret_assignment", "token = get_token()"),
        ("secret_assignment", "API_KEY=os.environ['API_KEY']"),
        ("secret_assignment", 'password: "${DB_PASSWORD}"'),
        ("secret_assignment", "secret_key = settings.SECRET_KEY"),
        ("secret_assignment", "api_key = your_api_key_here"),
        ("password", "password: z.string().min(8)"),
        ("random_token", "call getUser2ById with MyDataFrame2024 on x86_64-linux-gnu"),
        ("random_token", "uuid d2db5ec4-6e7a-11ee-b962-0242ac120002 and max_length=100"),
        ("random_token", "see https://example.com/aB3dE5fG7h9x1y and Password123!"),
        ("bearer_token", "the bearer bond was sold"),
        ("connection_string", "see https://example.com/path?a=b"),
    ],
)
def test_secret_recognizers_leave_code_and_prose_alone(module, text):
    assert found(module, text) == []


@pytest.mark.parametrize(
    ("token", "random_looking"),
    [
        ("aB3dE5fG7h!x1y", True),
        ("sk3Kd9QpLm2Z", True),
        ("HelloWorld123", False),
        ("SSD1306_SWITCHCAPVCC", False),
        ("gpt-4o-mini-2024-07-18", False),
        ("short1A!", False),
    ],
)
def test_looks_random(token, random_looking):
    from privacy.recognizers.random_token import looks_random

    assert looks_random(token) is random_looking


def test_random_token_finds_most_generated_passwords():
    from privacy.recognizers.random_token import looks_random

    rng = random.Random(3)
    tokens = [
        "".join(rng.choice(AN) for _ in range(10))
        + rng.choice("!@#$%")
        + "".join(rng.choice(AN) for _ in range(5))
        for _ in range(500)
    ]
    assert sum(map(looks_random, tokens)) / len(tokens) >= 0.8


@pytest.mark.parametrize(
    ("module", "text", "expected"),
    [
        ("postal_code", "ZIP: 7412 SL", "7412 SL"),
        ("postal_code", "postal code is K1A 0B1.", "K1A 0B1"),
        ("postal_code", "Postcode: SW1A 1AA", "SW1A 1AA"),
        ("postal_code", "zip 94105-1234", "94105-1234"),
        ("honorific", "please correct it to Mr. Fábio Barros?", "Mr."),
        ("honorific", "ask Dr Wells", "Dr"),
        ("age", "and i'm 31 y/o.", "31"),
        ("age", "My brother just turned 60", "60"),
        ("age", "a 27-year-old woman", "27"),
        ("age", "I am 34.", "34"),
        ("street_address", "ship it to 742 Evergreen Terrace please", "742 Evergreen Terrace"),
        ("street_address", "she lives at Kiannonkatu 98 now", "Kiannonkatu 98"),
        ("street_address", "address: 450 Præstevænget 15, København V", "450 Præstevænget 15"),
        ("street_address", "Via dei Fiori 12, Roma", "Via dei Fiori 12"),
        ("street_address", "3037 ul. Północna 73", "3037 ul. Północna 73"),
        ("street_address", "PSC 6477, Box 2981", "PSC 6477, Box 2981"),
        ("street_address", "Unit 1293 Box 4311\nDPO AE 01708", "DPO AE 01708"),
    ],
)
def test_personal_data_recognizers(module, text, expected):
    assert expected in found(module, text)


@pytest.mark.parametrize(
    ("module", "text"),
    [
        ("postal_code", "the zip file has 3520 entries"),
        ("honorific", "Dr. is an abbreviation"),
        ("age", "I'm 5 minutes late, version 3 years ago"),
        ("age", "I am 12.5 km away"),
        ("street_address", "put 3 in the top row and 4 checkboxes per row"),
        ("street_address", "take the drive 60 miles, walk 1700 steps"),
        ("street_address", "Windows 10 and Python 3"),
    ],
)
def test_personal_data_recognizers_leave_prose_alone(module, text):
    assert found(module, text) == []


def test_address_block_covers_the_lines_around_the_street():
    text = "Dear Sir,\n\nMaureen Roe\nAcme Oy\n41086 Kiannonkatu 98\n Suite 464\n OULU\n\n Finland 80896\n\nPhone: 083 564 9312"
    assert found("address_block", text) == [
        "Maureen Roe\nAcme Oy\n41086 Kiannonkatu 98\n Suite 464\n OULU\n\n Finland 80896"
    ]


@pytest.mark.parametrize(
    "text",
    [
        "He lives at 742 Evergreen Terrace.\nThen he went to work, where nobody knew his address at all.",
        "1. Open 10 Downing Street\n2. Close the file: done",
    ],
)
def test_address_block_stops_at_prose_and_lists(text):
    assert found("address_block", text) == []


def test_recognizer_names_are_unique():
    from privacy.recognizers import load_recognizers

    names = [r.name for r in load_recognizers()]
    assert len(names) == len(set(names)), sorted(names)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"here is my .env\nAPI_KEY={RANDOM_PASSWORD}\nDEBUG=true", RANDOM_PASSWORD),
        (f"send the funds to {RANDOM_PASSWORD} before friday", RANDOM_PASSWORD),
        (f"SLACK_BOT={SLACK}", SLACK),
        ("postgres://admin:Sup3r-S3cret@10.0.0.5/app", "Sup3r-S3cret"),
    ],
)
def test_redactor_removes_secrets(redactor, text, secret):
    assert secret not in redactor.redact(text).text


def test_redactor_redacts_an_address_block_and_title(redactor):
    text = (
        "Please write to Mrs. Jane Roe\n\n41086 Kiannonkatu 98\n Suite 464\n OULU\n\n Finland 80896\n\nThanks"
    )
    out = redactor.redact(text)
    for value in ("Mrs.", "Kiannonkatu", "Suite 464", "OULU", "80896"):
        assert value not in out.text, value
    assert out.text.endswith("Thanks")


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        # given name + surname (both B-) after a space: one PERSON
        ([(0, 5, "B-GIVEN_NAME", 0.9), (6, 12, "B-SURNAME", 0.8)], [(0, 12, "PERSON", 0.8)]),
        # a sub-word with no gap joins its word
        ([(0, 3, "B-CITY", 0.9), (3, 6, "B-CITY", 0.7)], [(0, 6, "LOCATION", 0.7)]),
        # a second city after a space is a new entity; punctuation splits too
        (
            [(0, 5, "B-CITY", 0.9), (6, 11, "B-CITY", 0.9)],
            [(0, 5, "LOCATION", 0.9), (6, 11, "LOCATION", 0.9)],
        ),
        # unsure and outside tokens are dropped and close the span
        (
            [(0, 5, "B-GIVEN_NAME", 0.4), (6, 12, "O", 0.99), (13, 18, "B-ZIP_CODE", 0.95)],
            [(13, 18, "ZIP_CODE", 0.95)],
        ),
    ],
)
def test_rampart_token_merging(tokens, expected):
    from privacy.recognizers.rampart_ner import merge_tokens

    text = "abcde fghijk lmnop qrstuvwxyz"
    assert merge_tokens(text, tokens) == expected


@pytest.fixture(scope="module")
def rampart():
    from privacy.recognizers.rampart_ner import build

    return build()


def test_rampart_model_finds_names_and_address_parts_in_long_text(rampart):
    # past the model's 512 positions: read in windows
    text = ("filler " * 600) + "Ship it to joão silva, 41086 Kiannonkatu 98, OULU, Finland 80896."
    spans = {(text[r.start : r.end], r.entity_type) for r in rampart.analyze(text, [])}
    assert ("joão silva", "PERSON") in spans
    assert ("80896", "ZIP_CODE") in spans
    assert ("OULU", "LOCATION") in spans


def test_rampart_skips_code_outside_comments_and_strings(rampart):
    code = "```python\ndef handler(event):\n    user = event['name']\n    return user.upper()\n```"
    assert rampart.analyze(code, []) == []


@pytest.mark.parametrize(
    ("text", "span", "entity", "kept"),
    [
        ("ask Ivan Petrovich", (4, 12), "PERSON", "Ivan Petrovich"),  # grown to the whole word
        ("write with flutter today", (11, 18), "LOCATION", None),  # lower-case place, unsure
        ("the answer is 145 apples", (14, 17), "STREET_ADDRESS", None),  # a bare number
        ("port 8080 is open", (5, 9), "ZIP_CODE", None),  # no address on its line
        ("- at -", (0, 1), "PERSON", None),  # no letter
    ],
)
def test_rampart_spans_are_pruned_to_plausible_words(text, span, entity, kept):
    from privacy.recognizers.rampart_ner import plausible, whole_words

    start, end = whole_words(text, *span)
    spans = [(start, end, entity, 0.6)]
    assert (text[start:end] if plausible(text, start, end, entity, 0.6, spans) else None) == kept


RAMPART_TEXTS = [
    "my neighbour maria fernandes moved to 12 Rue de la Paix, Lyon.",
    "Send the parcel to Kenji Watanabe at 3-1 Marunouchi, Tokyo 100-0005.",
    "no names here, just a question about sorting lists in python",
    "",
]


def test_rampart_int8_finds_what_the_shipped_4bit_model_finds(rampart):
    from privacy.recognizers.rampart_ner import RampartRecognizer

    shipped = RampartRecognizer(precision="q4")
    for text in RAMPART_TEXTS:
        int8 = {(text[r.start : r.end], r.entity_type) for r in rampart.analyze(text, [])}
        q4 = {(text[r.start : r.end], r.entity_type) for r in shipped.analyze(text, [])}
        assert int8 == q4, text


def test_rampart_batch_matches_one_by_one(rampart):
    batch = rampart.analyze_batch(RAMPART_TEXTS, None)
    single = [rampart.analyze(text, []) for text in RAMPART_TEXTS]
    spans = [[(r.start, r.end, r.entity_type) for r in results] for results in batch]
    assert spans == [[(r.start, r.end, r.entity_type) for r in results] for results in single]
    assert spans[0] and spans[1] and not spans[3]


def test_rampart_int8_model_is_cached(tmp_path):
    from privacy.recognizers.rampart_ner import MODEL_FILE, int8_model, model_dir

    first = int8_model(model_dir() / MODEL_FILE, tmp_path)
    modified = first.stat().st_mtime_ns
    assert int8_model(model_dir() / MODEL_FILE, tmp_path) == first
    assert first.stat().st_mtime_ns == modified and [p.name for p in tmp_path.iterdir()] == [first.name]
