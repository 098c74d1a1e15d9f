"""The SAM template's promises, one test each (PRIVACY.md P8, P9, P11; issue #8).

The template is read with cfn-lint's loader, so `!Ref`, `!GetAtt` and `!Sub` arrive as their
long forms. Intrinsics are compared as short tokens: `{"Fn::GetAtt": ["Table", "Arn"]}` is
`Table.Arn`, `{"Ref": "X"}` is `Ref:X`, a `!Sub` is its string.

The allow-lists below are the whole of what the four functions may do. A new IAM action or
resource anywhere in the template fails `test_each_role_grants_exactly_its_allow_list` until it is
added here, next to the reason it is needed.
"""

import copy
import re
from pathlib import Path

import pytest
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "infra" / "template.yaml"
SCHEMA_RS = ROOT / "shared" / "src" / "store" / "schema.rs"
README = ROOT / "README.md"

# Lambda name (= package name = binary name) -> logical id.
FUNCTIONS = {
    "oauth-callback": "OAuthCallbackFunction",
    "connectors-api": "ConnectorsApiFunction",
    "token-refresh": "TokenRefreshFunction",
    "export": "ExportFunction",
}
SIZES = {  # MemorySize (MB), Timeout (s)
    "oauth-callback": (256, 30),
    "connectors-api": (256, 30),
    "token-refresh": (256, 300),
    "export": (1024, 840),
}

# An erase's delayed re-sweep (shared/src/erase/later.rs) comes SQS's longest delay after it:
# the export function's timeout must be below it.
SQS_MAX_DELAY = 900


def test_the_public_callback_has_reserved_concurrency(template):
    props = function(template, "oauth-callback")
    assert 1 <= props["ReservedConcurrentExecutions"] <= 50


def load_schema_names():
    """`pub const NAME: &str = "value";` from shared/src/store/schema.rs."""
    text = SCHEMA_RS.read_text()
    names = dict(re.findall(r'pub const (\w+): &str = "([^"]+)";', text))
    for required in (
        "PK", "SK", "TTL", "REFRESH_DUE_INDEX", "REFRESH_BUCKET", "REFRESH_DUE_AT",
        "JOB_DUE_INDEX", "JOB_DUE_BUCKET", "JOB_DUE_AT",
    ):
        assert required in names, f"{SCHEMA_RS} no longer defines {required}"
    return names


SCHEMA = load_schema_names()

# Resource tokens.
TABLE = "Table.Arn"
INDEX = "${Table.Arn}/index/" + SCHEMA["REFRESH_DUE_INDEX"]
JOBS_INDEX = "${Table.Arn}/index/" + SCHEMA["JOB_DUE_INDEX"]
KEY = "DataKey.Arn"
JIRA_SECRET = "Ref:JiraClientSecret"
CONFLUENCE_SECRET = "Ref:ConfluenceClientSecret"
BUS = "EventBus.Arn"
BUCKET = "Bucket.Arn"
OBJECTS = "${Bucket.Arn}/*"
DLQ = "DeadLetterQueue.Arn"
RESUME = "ResumeQueue.Arn"


def grant(actions, resources):
    return {(a, r) for a in actions for r in resources}


def logs(group):
    return grant(["logs:CreateLogStream", "logs:PutLogEvents"], [f"{group}.Arn"])


SECRETS = grant(["secretsmanager:GetSecretValue"], [JIRA_SECRET, CONFLUENCE_SECRET])
SEAL_AND_OPEN = grant(["kms:GenerateDataKey", "kms:Decrypt"], [KEY])
PUBLISH = grant(["events:PutEvents"], [BUS])

# (action, resource) each function's role may grant; nothing else.
ALLOWED = {
    # Consumes the OAuth state, exchanges the code, seals and stores the tokens. No S3, no events.
    "oauth-callback": logs("OAuthCallbackLogGroup")
    | grant(
        ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query"],
        [TABLE],
    )
    | grant(["kms:GenerateDataKey"], [KEY])
    # Only through Secrets Manager (the client secrets are encrypted with the stack key) and
    # Lambda (environment variables): test_callback_decrypts_only_through_secrets_manager_and_lambda.
    | grant(["kms:Decrypt"], [KEY])
    | SECRETS,
    # Authorizations, connections, connectors, exports (ExportRequested) and erase (all versions,
    # unfinished uploads) of a connection's or tenant's objects.
    # No client secret, no token envelope, no refresh index, no object read (issue 16): it starts
    # authorizations (Authorizer), and erase only lists and deletes; the key only for Lambda's
    # decryption of its environment (KMS_USE).
    "connectors-api": logs("ConnectorsApiLogGroup")
    | grant(
        [
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
            "dynamodb:BatchWriteItem",
        ],
        [TABLE],
    )
    | grant(["kms:Decrypt"], [KEY])
    | PUBLISH
    # Erase tasks to the resume queue: every erase's delayed re-sweep, and the tenant erase
    # that the export function runs (DELETE /tenants answers 202). Sending only; the queue is
    # encrypted with the stack key (KMS_USE "sqs").
    | grant(["sqs:SendMessage"], [RESUME])
    | grant(["kms:GenerateDataKey", "kms:Decrypt"], [KEY])
    | grant(["s3:ListBucketVersions", "s3:ListBucketMultipartUploads"], [BUCKET])
    | grant(["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:AbortMultipartUpload"], [OBJECTS]),
    # Reads due grants from the refresh-due index, refreshes them, publishes ConnectionRevoked;
    # migrates legacy connections into grants (PutItem) and deletes grants no connection uses
    # (DeleteItem); lists a tenant's connections to find a grant's (Query on the table). No S3.
    "token-refresh": logs("TokenRefreshLogGroup")
    | grant(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"], [TABLE])
    | grant(["dynamodb:Query"], [TABLE, INDEX])
    | SEAL_AND_OPEN
    | SECRETS
    | PUBLISH,
    # Runs jobs: refreshes tokens on demand, writes items and streamed attachments, publishes
    # ExportContinued/Completed/Failed; its async failures go to the DLQ with its own role.
    "export": logs("ExportLogGroup")
    | grant(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"], [TABLE])
    # The sweeper's query of overdue jobs.
    | grant(["dynamodb:Query"], [JOBS_INDEX])
    | SEAL_AND_OPEN
    | SECRETS
    | PUBLISH
    | grant(["s3:ListBucket", "s3:ListBucketVersions", "s3:ListBucketMultipartUploads"], [BUCKET])
    | grant(
        [
            "s3:PutObject",
            "s3:PutObjectTagging",
            "s3:GetObject",
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "s3:AbortMultipartUpload",
        ],
        [OBJECTS],
    )
    | grant(["sqs:SendMessage"], [DLQ])
    # Delayed resumes after an Atlassian "wait": sends them, and reads them through the
    # event source mapping (which uses the function's role).
    | grant(["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"], [RESUME]),
}

# How each function may use the stack key (every KMS statement is conditioned): directly only
# for token envelopes (the vault's encryption context, `purpose` below), otherwise only through
# the named services (kms:ViaService), each with the actions it needs there.
ENVELOPE_PURPOSE = re.search(r'\("purpose", "([^"]+)"\)', (ROOT / "shared/src/vault/mod.rs").read_text()).group(1)
KMS_USE = {
    "oauth-callback": {
        "envelope": {"kms:GenerateDataKey"},
        "via": {"secretsmanager": {"kms:Decrypt"}, "lambda": {"kms:Decrypt"}},
    },
    "connectors-api": {
        "envelope": set(),
        "via": {"lambda": {"kms:Decrypt"}, "sqs": {"kms:GenerateDataKey", "kms:Decrypt"}},
    },
    "token-refresh": {
        "envelope": {"kms:GenerateDataKey", "kms:Decrypt"},
        "via": {"secretsmanager": {"kms:Decrypt"}, "lambda": {"kms:Decrypt"}},
    },
    "export": {
        "envelope": {"kms:GenerateDataKey", "kms:Decrypt"},
        "via": {
            "secretsmanager": {"kms:Decrypt"},
            "lambda": {"kms:Decrypt"},
            "s3": {"kms:GenerateDataKey", "kms:Decrypt"},
            "sqs": {"kms:GenerateDataKey", "kms:Decrypt"},
        },
    },
}

# Resources with a `*` that a role may name, and why. `Resource: "*"` is in none of them: every
# action the functions use can be scoped to a resource.
WILDCARD_RESOURCES = {
    OBJECTS: "the objects of the stack's own bucket; keys are per tenant and known only at run time",
}

# What each function's environment must hold (README, Configuration).
APP_VARS = {
    "TABLE_NAME",
    "KMS_KEY_ID",
    "EVENT_BUS_NAME",
    "JIRA_CLIENT_ID",
    "JIRA_CLIENT_SECRET_NAME",
    "JIRA_SCOPES",
    "CONFLUENCE_CLIENT_ID",
    "CONFLUENCE_CLIENT_SECRET_NAME",
    "CONFLUENCE_SCOPES",
}
ENVIRONMENT = {
    "oauth-callback": APP_VARS | {"OAUTH_REDIRECT_URL", "ALLOWED_RETURN_URLS", "JOB_RETENTION_DAYS"},
    "connectors-api": APP_VARS
    | {"BUCKET_NAME", "OAUTH_REDIRECT_URL", "ALLOWED_RETURN_URLS", "JOB_RETENTION_DAYS", "RESUME_QUEUE_URL"},
    "token-refresh": APP_VARS,
    "export": APP_VARS | {"BUCKET_NAME", "JOB_RETENTION_DAYS", "RESUME_QUEUE_URL", "DEAD_LETTER_QUEUE_URL"},
}


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def template():
    return cfn_yaml.load(str(TEMPLATE_PATH))


def token(value):
    """A short, comparable form of a value or intrinsic."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref":
            return f"Ref:{arg}"
        if key == "Fn::GetAtt":
            return ".".join(arg) if isinstance(arg, list) else arg
        if key == "Fn::Sub":
            return arg if isinstance(arg, str) else arg[0]
    return repr(value)


def as_list(value):
    return value if isinstance(value, list) else [value]


def resources(template, *types):
    return {k: v for k, v in template["Resources"].items() if v["Type"] in types}


def props(template, logical_id):
    return template["Resources"][logical_id].get("Properties", {})


def function(template, name):
    return props(template, FUNCTIONS[name])


def role_id(template, name):
    role = function(template, name)["Role"]
    assert isinstance(role, dict) and "Fn::GetAtt" in role, f"{name}: Role must be !GetAtt <Role>.Arn"
    logical, attr = role["Fn::GetAtt"]
    assert attr == "Arn"
    return logical


def statements(template, role_logical_id):
    for policy in props(template, role_logical_id).get("Policies", []):
        yield from as_list(policy["PolicyDocument"]["Statement"])


def granted(template, name):
    pairs = set()
    for st in statements(template, role_id(template, name)):
        for action in as_list(st["Action"]):
            for resource in as_list(st["Resource"]):
                pairs.add((action, token(resource)))
    return pairs


def every_iam_statement(template):
    """(where, statement) for every identity policy statement in the template."""
    for logical, res in resources(template, "AWS::IAM::Role").items():
        for st in statements(template, logical):
            yield logical, st


# ---------------------------------------------------------------- functions


def test_the_stack_has_exactly_the_four_functions(template):
    found = resources(template, "AWS::Serverless::Function", "AWS::Lambda::Function")
    assert set(found) == set(FUNCTIONS.values())


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_is_a_cargo_lambda_arm64_build_of_its_package(template, name):
    res = template["Resources"][FUNCTIONS[name]]
    p = res["Properties"]
    assert res["Type"] == "AWS::Serverless::Function"
    assert p["Runtime"] == "provided.al2023"
    assert p["Architectures"] == ["arm64"]
    assert p["Handler"] == "bootstrap"
    assert p["CodeUri"] == ".."
    assert (TEMPLATE_PATH.parent / p["CodeUri"] / "Cargo.toml").resolve() == ROOT / "Cargo.toml"
    assert res["Metadata"]["BuildMethod"] == "rust-cargolambda"
    assert res["Metadata"]["BuildProperties"]["Binary"] == name
    cargo = (ROOT / "functions" / name / "Cargo.toml").read_text()
    assert f'name = "{name}"' in cargo, f"functions/{name} is not the package {name}"
    assert token(p["FunctionName"]) == "${AWS::StackName}-" + name


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_memory_and_timeout(template, name):
    p = function(template, name)
    assert (p["MemorySize"], p["Timeout"]) == SIZES[name]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_environment_is_encrypted_with_the_stack_key(template, name):
    assert token(function(template, name)["KmsKeyArn"]) == KEY


def test_every_function_has_its_own_role(template):
    roles = [role_id(template, name) for name in FUNCTIONS]
    assert len(set(roles)) == len(roles)
    for logical in roles:
        assert template["Resources"][logical]["Type"] == "AWS::IAM::Role"
        trust = as_list(props(template, logical)["AssumeRolePolicyDocument"]["Statement"])
        assert trust == [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]
    assert set(roles) == set(resources(template, "AWS::IAM::Role")), "a role that no function uses"


def test_no_function_gets_permissions_outside_its_role(template):
    for name in FUNCTIONS:
        p = function(template, name)
        assert "Policies" not in p, f"{name}: SAM policies bypass the allow-lists"
        assert "FunctionUrlConfig" not in p, f"{name}: function URLs are explicit AWS::Lambda::Url resources"
        assert "Events" not in p, f"{name}: event sources are explicit rules and permissions"
    for logical in resources(template, "AWS::IAM::Role"):
        p = props(template, logical)
        assert "ManagedPolicyArns" not in p, f"{logical}: managed policies bypass the allow-lists"
        assert "PermissionsBoundary" not in p
    other = resources(
        template, "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::User", "AWS::IAM::Group",
        "AWS::IAM::RolePolicy", "AWS::IAM::InstanceProfile",
    )
    assert not other, f"IAM outside the function roles: {sorted(other)}"


# ---------------------------------------------------------------- least privilege


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_role_grants_exactly_its_allow_list(template, name):
    have = granted(template, name)
    extra = sorted(have - ALLOWED[name])
    missing = sorted(ALLOWED[name] - have)
    assert not extra, f"{name} grants what its allow-list does not: {extra}"
    assert not missing, f"{name}'s allow-list names what its role no longer grants: {missing}"


def test_no_wildcard_actions_or_resources(template):
    for where, st in every_iam_statement(template):
        assert st["Effect"] == "Allow", f"{where}: only Allow statements are enumerated"
        assert "NotAction" not in st and "NotResource" not in st, where
        for action in as_list(st["Action"]):
            assert "*" not in action and "?" not in action, f"{where}: wildcard action {action}"
        for resource in as_list(st["Resource"]):
            r = token(resource)
            assert r != "*", f"{where}: Resource '*'"
            if "*" in r:
                assert r in WILDCARD_RESOURCES, f"{where}: undocumented wildcard resource {r}"


def policy_statements_anywhere(node, path=""):
    """Every policy statement in the template, at any depth: (path, statement)."""
    if isinstance(node, dict):
        if "Effect" in node and ("Action" in node or "NotAction" in node):
            yield path, node
        for key, value in node.items():
            yield from policy_statements_anywhere(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from policy_statements_anywhere(value, f"{path}/{i}")


# Resource-policy statements (key, bucket, queue): who else may do what. Identity statements are
# the function roles', checked against ALLOWED above.
RESOURCE_POLICY_STATEMENTS = {
    ("DataKey", "AccountIamPolicies", "Allow", ("kms:*",)),
    (
        "DataKey",
        "CloudWatchLogsForThisStacksFunctions",
        "Allow",
        ("kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"),
    ),
    ("DataKey", "EventBridgeDeadLettersFromTheExportRule", "Allow", ("kms:Decrypt", "kms:GenerateDataKey")),
    ("BucketPolicy", "DenyInsecureTransport", "Deny", ("s3:*",)),
    ("BucketPolicy", "DenyEncryptionOtherThanKms", "Deny", ("s3:PutObject",)),
    ("DeadLetterQueuePolicy", "ExportRuleDeadLetters", "Allow", ("sqs:SendMessage",)),
    ("DeadLetterQueuePolicy", "DenyInsecureTransport", "Deny", ("sqs:*",)),
    ("ResumeQueuePolicy", "DenyInsecureTransport", "Deny", ("sqs:*",)),
}


def test_every_policy_statement_in_the_template_is_enumerated(template):
    """A permission added anywhere (a new role, policy, resource policy) fails here or in the
    allow-list test."""
    roles = set(resources(template, "AWS::IAM::Role"))
    found = set()
    for path, st in policy_statements_anywhere(template["Resources"]):
        logical = path.split("/")[1]
        if logical in roles:
            if "AssumeRolePolicyDocument" in path:
                continue  # the trust policy, checked in test_every_function_has_its_own_role
            assert "/Policies/" in path, f"{path}: a role's permissions are its inline policies"
            continue  # checked against ALLOWED
        found.add((logical, st.get("Sid"), st["Effect"], tuple(as_list(st["Action"]))))
    assert found == RESOURCE_POLICY_STATEMENTS


@pytest.mark.parametrize("name", ["oauth-callback", "token-refresh"])
def test_callback_and_refresh_cannot_reach_s3(template, name):
    for action, resource in granted(template, name):
        assert not action.startswith("s3:"), f"{name} may call {action}"
        assert "Bucket" not in resource, f"{name} names the bucket: {resource}"


def test_callback_cannot_publish_events_or_send_messages(template):
    services = {action.split(":")[0] for action, _ in granted(template, "oauth-callback")}
    assert services == {"logs", "dynamodb", "kms", "secretsmanager"}


def test_callback_decrypts_only_through_secrets_manager_and_lambda(template):
    decrypts = [
        st
        for st in statements(template, role_id(template, "oauth-callback"))
        if "kms:Decrypt" in as_list(st["Action"])
    ]
    assert len(decrypts) == 1
    st = decrypts[0]
    assert as_list(st["Action"]) == ["kms:Decrypt"]
    via = [token(v) for v in as_list(st["Condition"]["StringEquals"]["kms:ViaService"])]
    assert sorted(via) == ["lambda.${AWS::Region}.amazonaws.com", "secretsmanager.${AWS::Region}.amazonaws.com"]


def test_only_export_may_send_to_the_dead_letter_queue(template):
    for name in FUNCTIONS:
        dlq = {a for a, r in granted(template, name) if r == DLQ}
        assert dlq == ({"sqs:SendMessage"} if name == "export" else set()), name
        sqs = {r for a, r in granted(template, name) if a.startswith("sqs:")}
        allowed = {"export": {DLQ, RESUME}, "connectors-api": {RESUME}}.get(name, set())
        assert sqs <= allowed, name


def test_the_api_only_sends_to_the_resume_queue(template):
    sqs = {(a, r) for a, r in granted(template, "connectors-api") if a.startswith("sqs:")}
    assert sqs == {("sqs:SendMessage", RESUME)}


def test_the_export_timeout_is_below_the_resweep_delay(template):
    assert SIZES["export"][1] < SQS_MAX_DELAY
    assert str(SQS_MAX_DELAY) in (ROOT / "shared/src/export/resume.rs").read_text()


def test_resume_queue_is_encrypted_redriven_and_read_by_export_only(template):
    q = props(template, "ResumeQueue")
    assert token(q["KmsMasterKeyId"]) == KEY
    # An event source mapping refuses a queue whose visibility timeout is below the
    # function's timeout.
    assert q["VisibilityTimeout"] >= SIZES["export"][1]
    assert token(q["RedrivePolicy"]["deadLetterTargetArn"]) == DLQ
    (mapping,) = resources(template, "AWS::Lambda::EventSourceMapping").values()
    m = mapping["Properties"]
    assert token(m["EventSourceArn"]) == RESUME
    assert token(m["FunctionName"]) == "Ref:ExportFunction"
    assert m["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    variables = function(template, "export")["Environment"]["Variables"]
    assert token(variables["RESUME_QUEUE_URL"]) == "Ref:ResumeQueue"


# ---------------------------------------------------------------- function URLs


def test_only_the_callback_url_is_public(template):
    urls = {token(p["Properties"]["TargetFunctionArn"]): p["Properties"]["AuthType"]
            for p in resources(template, "AWS::Lambda::Url").values()}
    assert urls == {"OAuthCallbackFunction.Arn": "NONE", "ConnectorsApiFunction.Arn": "AWS_IAM"}


def test_only_the_callback_may_be_invoked_by_anyone(template):
    public = {}
    for logical, res in resources(template, "AWS::Lambda::Permission").items():
        p = res["Properties"]
        if p["Principal"] == "*":
            public[logical] = (token(p["FunctionName"]), p["Action"])
    assert sorted(public.values()) == [
        ("Ref:OAuthCallbackFunction", "lambda:InvokeFunction"),
        ("Ref:OAuthCallbackFunction", "lambda:InvokeFunctionUrl"),
    ]
    for logical, (_, action) in public.items():
        p = props(template, logical)
        if action == "lambda:InvokeFunctionUrl":
            assert p["FunctionUrlAuthType"] == "NONE"
        else:
            assert p["InvokedViaFunctionUrl"] is True, "public invoke only through the URL"


def test_service_permissions_name_their_source(template):
    for logical, res in resources(template, "AWS::Lambda::Permission").items():
        p = res["Properties"]
        if p["Principal"] != "*":
            assert p["Principal"] == "events.amazonaws.com"
            assert "SourceArn" in p, f"{logical}: any rule in any account could invoke"


# ---------------------------------------------------------------- environment


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_environment_has_what_it_needs(template, name):
    variables = function(template, name)["Environment"]["Variables"]
    assert set(variables) == ENVIRONMENT[name]
    assert token(variables["TABLE_NAME"]) == "Ref:Table"
    assert token(variables["KMS_KEY_ID"]) == KEY
    assert token(variables["EVENT_BUS_NAME"]) == "Ref:EventBus"
    assert token(variables["JIRA_CLIENT_SECRET_NAME"]) == JIRA_SECRET
    assert token(variables["CONFLUENCE_CLIENT_SECRET_NAME"]) == CONFLUENCE_SECRET
    if "BUCKET_NAME" in variables:
        assert token(variables["BUCKET_NAME"]) == "Ref:Bucket"


def test_environment_names_are_the_documented_ones():
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", README.read_text(), re.MULTILINE))
    used = set().union(*ENVIRONMENT.values())
    assert used <= documented, f"not in README's configuration table: {sorted(used - documented)}"


def test_no_environment_variable_carries_a_credential(template):
    """PRIVACY.md P6: client secrets live in Secrets Manager; no password or API token at all."""
    for name in FUNCTIONS:
        for var, value in function(template, name)["Environment"]["Variables"].items():
            assert not re.search(r"PASSWORD|API_TOKEN|BASIC_AUTH|USERNAME", var), var
            if var.endswith("_SECRET_NAME"):
                assert token(value).startswith("Ref:") and "Secret" in token(value)
            else:
                assert "SECRET" not in var, var


def test_redirect_url_is_the_callback_parameter_or_the_callback_url(template):
    callback = function(template, "oauth-callback")["Environment"]["Variables"]["OAUTH_REDIRECT_URL"]
    assert callback == {"Ref": "CallbackUrl"}
    api = function(template, "connectors-api")["Environment"]["Variables"]["OAUTH_REDIRECT_URL"]
    assert api == {
        "Fn::If": ["HasCallbackUrl", {"Ref": "CallbackUrl"}, {"Fn::GetAtt": ["OAuthCallbackUrl", "FunctionUrl"]}]
    }
    assert template["Outputs"]["CallbackUrl"]["Value"] == {"Fn::GetAtt": ["OAuthCallbackUrl", "FunctionUrl"]}


# ---------------------------------------------------------------- logs


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_logs_to_its_own_encrypted_group_with_retention(template, name):
    group = function(template, name)["LoggingConfig"]["LogGroup"]
    assert set(group) == {"Ref"}
    logical = group["Ref"]
    res = template["Resources"][logical]
    assert res["Type"] == "AWS::Logs::LogGroup"
    p = res["Properties"]
    assert token(p["LogGroupName"]) == "/aws/lambda/${AWS::StackName}-" + name
    assert p["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert token(p["KmsKeyId"]) == KEY
    log_grants = {(a, r) for a, r in granted(template, name) if a.startswith("logs:")}
    assert log_grants == logs(logical)


def test_log_groups_are_not_shared(template):
    groups = [function(template, name)["LoggingConfig"]["LogGroup"]["Ref"] for name in FUNCTIONS]
    assert len(set(groups)) == 4
    assert set(groups) == set(resources(template, "AWS::Logs::LogGroup"))


def test_log_retention_defaults_to_30_days(template):
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 30


# ---------------------------------------------------------------- table


def table(template):
    return props(template, "Table")


def test_table_names_come_from_the_store_schema(template):
    t = table(template)
    assert t["KeySchema"] == [
        {"AttributeName": SCHEMA["PK"], "KeyType": "HASH"},
        {"AttributeName": SCHEMA["SK"], "KeyType": "RANGE"},
    ]
    assert {a["AttributeName"]: a["AttributeType"] for a in t["AttributeDefinitions"]} == {
        SCHEMA["PK"]: "S",
        SCHEMA["SK"]: "S",
        SCHEMA["REFRESH_BUCKET"]: "S",
        SCHEMA["REFRESH_DUE_AT"]: "N",
        SCHEMA["JOB_DUE_BUCKET"]: "S",
        SCHEMA["JOB_DUE_AT"]: "N",
    }


def test_table_has_the_jobs_due_index_keys_only(template):
    gsis = {g["IndexName"]: g for g in table(template)["GlobalSecondaryIndexes"]}
    gsi = gsis[SCHEMA["JOB_DUE_INDEX"]]
    assert gsi["KeySchema"] == [
        {"AttributeName": SCHEMA["JOB_DUE_BUCKET"], "KeyType": "HASH"},
        {"AttributeName": SCHEMA["JOB_DUE_AT"], "KeyType": "RANGE"},
    ]
    assert gsi["Projection"] == {"ProjectionType": "KEYS_ONLY"}


def test_table_has_the_refresh_due_index_keys_only(template):
    gsis = {g["IndexName"]: g for g in table(template)["GlobalSecondaryIndexes"]}
    assert set(gsis) == {SCHEMA["REFRESH_DUE_INDEX"], SCHEMA["JOB_DUE_INDEX"]}
    gsi = gsis[SCHEMA["REFRESH_DUE_INDEX"]]
    assert gsi["KeySchema"] == [
        {"AttributeName": SCHEMA["REFRESH_BUCKET"], "KeyType": "HASH"},
        {"AttributeName": SCHEMA["REFRESH_DUE_AT"], "KeyType": "RANGE"},
    ]
    assert gsi["Projection"] == {"ProjectionType": "KEYS_ONLY"}


def test_table_expires_transient_items_by_ttl(template):
    assert table(template)["TimeToLiveSpecification"] == {"AttributeName": SCHEMA["TTL"], "Enabled": True}


def test_table_is_encrypted_with_the_stack_key(template):
    sse = table(template)["SSESpecification"]
    assert sse["SSEEnabled"] is True
    assert sse["SSEType"] == "KMS"
    assert token(sse["KMSMasterKeyId"]) == KEY


def test_table_has_point_in_time_recovery_and_is_on_demand(template):
    t = table(template)
    assert t["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert t["BillingMode"] == "PAY_PER_REQUEST"


# ---------------------------------------------------------------- bucket


def bucket(template):
    return props(template, "Bucket")


def test_bucket_is_encrypted_with_the_stack_key_and_a_bucket_key(template):
    (rule,) = bucket(template)["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert token(rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]) == KEY
    assert rule["BucketKeyEnabled"] is True


def test_bucket_blocks_all_public_access(template):
    assert bucket(template)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket(template)["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def test_bucket_is_versioned(template):
    assert bucket(template)["VersioningConfiguration"] == {"Status": "Enabled"}


def test_bucket_lifecycle_expires_only_transient_objects_and_old_versions(template):
    """Exported items stay while their connector exists (an incremental run does not rewrite
    an unchanged item, so an age-based rule would drop live data): only objects tagged
    retention=expire (job state, manifests no longer needed) expire, and every noncurrent
    version."""
    rules = [r for r in bucket(template)["LifecycleConfiguration"]["Rules"] if r["Status"] == "Enabled"]
    for r in rules:
        assert "Prefix" not in r and "Filter" not in r
    expiring = [r for r in rules if "ExpirationInDays" in r]
    assert len(expiring) == 1
    assert expiring[0]["ExpirationInDays"] == {"Ref": "RetentionDays"}
    assert expiring[0]["TagFilters"] == [{"Key": "retention", "Value": "expire"}]
    assert any(
        r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") == {"Ref": "NoncurrentRetentionDays"}
        for r in rules
    )
    assert any(r.get("AbortIncompleteMultipartUpload") == {"DaysAfterInitiation": 1} for r in rules)


def bucket_policy_statements(template):
    (policy,) = resources(template, "AWS::S3::BucketPolicy").values()
    assert policy["Properties"]["Bucket"] == {"Ref": "Bucket"}
    return as_list(policy["Properties"]["PolicyDocument"]["Statement"])


def test_bucket_denies_requests_without_tls(template):
    tls = [
        st
        for st in bucket_policy_statements(template)
        if st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") in ("false", False)
    ]
    assert len(tls) == 1
    st = tls[0]
    assert st["Effect"] == "Deny"
    assert st["Principal"] == "*"
    assert st["Action"] == "s3:*"
    assert sorted(token(r) for r in as_list(st["Resource"])) == sorted([BUCKET, OBJECTS])


def test_bucket_denies_uploads_with_another_encryption(template):
    (st,) = [s for s in bucket_policy_statements(template) if s.get("Sid") == "DenyEncryptionOtherThanKms"]
    assert st["Effect"] == "Deny" and st["Action"] == "s3:PutObject"
    assert st["Condition"]["StringNotEquals"] == {"s3:x-amz-server-side-encryption": "aws:kms"}


def test_bucket_policy_allows_nobody(template):
    assert all(st["Effect"] == "Deny" for st in bucket_policy_statements(template))


# ---------------------------------------------------------------- key, secrets, queue


def test_key_rotates(template):
    assert props(template, "DataKey")["EnableKeyRotation"] is True
    assert token(props(template, "DataKeyAlias")["TargetKeyId"]) == "Ref:DataKey"


def test_key_policy_names_only_the_account_and_conditioned_services(template):
    for st in props(template, "DataKey")["KeyPolicy"]["Statement"]:
        principal = st["Principal"]
        assert principal != "*" and principal.get("AWS") != "*", st.get("Sid")
        if "AWS" in principal:
            assert token(principal["AWS"]) == "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"
        else:
            service = token(principal["Service"])
            assert service in ("logs.${AWS::Region}.amazonaws.com", "events.amazonaws.com"), service
            assert st.get("Condition"), f"{st.get('Sid')}: a service statement must be conditioned"
            for action in as_list(st["Action"]):
                assert action != "kms:*"


def test_secrets_hold_no_value_in_the_template(template):
    secrets = resources(template, "AWS::SecretsManager::Secret")
    assert set(secrets) == {"JiraClientSecret", "ConfluenceClientSecret"}
    for logical, res in secrets.items():
        p = res["Properties"]
        assert "SecretString" not in p and "GenerateSecretString" not in p, logical
        assert token(p["KmsKeyId"]) == KEY


def test_dead_letter_queue_is_encrypted_with_the_stack_key(template):
    assert token(props(template, "DeadLetterQueue")["KmsMasterKeyId"]) == KEY


# ---------------------------------------------------------------- events


def test_export_rule_matches_export_events_on_the_stacks_bus(template):
    p = props(template, "ExportRule")
    assert p["EventBusName"] == {"Ref": "EventBus"}
    assert p["EventPattern"] == {
        "source": ["atlassian-connectors"],
        "detail-type": ["ExportRequested", "ExportContinued"],
    }
    (target,) = p["Targets"]
    assert token(target["Arn"]) == "ExportFunction.Arn"
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert token(target["DeadLetterConfig"]["Arn"]) == DLQ


def test_export_rule_may_invoke_export(template):
    p = props(template, "ExportRulePermission")
    assert (p["Action"], p["Principal"]) == ("lambda:InvokeFunction", "events.amazonaws.com")
    assert token(p["FunctionName"]) == "Ref:ExportFunction"
    assert token(p["SourceArn"]) == "ExportRule.Arn"


def test_export_failures_go_to_the_encrypted_dlq(template):
    (config,) = [
        r["Properties"]
        for r in resources(template, "AWS::Lambda::EventInvokeConfig").values()
        if token(r["Properties"]["FunctionName"]) == "Ref:ExportFunction"
    ]
    assert 0 < config["MaximumRetryAttempts"] <= 2
    assert token(config["DestinationConfig"]["OnFailure"]["Destination"]) == DLQ


def test_dead_letter_queue_accepts_only_the_export_rule(template):
    policy = resources(template, "AWS::SQS::QueuePolicy")["DeadLetterQueuePolicy"]
    resume = resources(template, "AWS::SQS::QueuePolicy")["ResumeQueuePolicy"]
    assert all(st["Effect"] == "Deny" for st in resume["Properties"]["PolicyDocument"]["Statement"])
    allows = [st for st in policy["Properties"]["PolicyDocument"]["Statement"] if st["Effect"] == "Allow"]
    assert len(allows) == 1
    assert allows[0]["Principal"] == {"Service": "events.amazonaws.com"}
    assert token(allows[0]["Condition"]["ArnEquals"]["aws:SourceArn"]) == "ExportRule.Arn"


def test_key_policy_lets_eventbridge_dead_letter_only_for_the_export_rule(template):
    (st,) = [
        s for s in props(template, "DataKey")["KeyPolicy"]["Statement"]
        if s["Principal"].get("Service") == "events.amazonaws.com"
    ]
    source = token(st["Condition"]["ArnEquals"]["aws:SourceArn"])
    bus = token(props(template, "EventBus")["Name"])
    rule = token(props(template, "ExportRule")["Name"])
    assert source.endswith(f":rule/{bus}/{rule}")


def test_the_export_sweeper_runs_every_5_minutes(template):
    (rule,) = [r for r in resources(template, "AWS::Events::Rule").values()
               if any(token(t["Arn"]) == "ExportFunction.Arn" for t in r["Properties"]["Targets"])
               and "ScheduleExpression" in r["Properties"]]
    assert rule["Properties"]["ScheduleExpression"] == "rate(5 minutes)"
    perms = [p["Properties"] for p in resources(template, "AWS::Lambda::Permission").values()
             if token(p["Properties"].get("SourceArn", "")) == "SweepSchedule.Arn"]
    assert [token(p["FunctionName"]) for p in perms] == ["Ref:ExportFunction"]


def test_token_refresh_runs_every_10_minutes(template):
    p = props(template, "RefreshSchedule")
    assert p["ScheduleExpression"] == "rate(10 minutes)"
    (target,) = p["Targets"]
    assert token(target["Arn"]) == "TokenRefreshFunction.Arn"
    perm = props(template, "RefreshSchedulePermission")
    assert token(perm["FunctionName"]) == "Ref:TokenRefreshFunction"
    assert token(perm["SourceArn"]) == "RefreshSchedule.Arn"


# ---------------------------------------------------------------- alarms, parameters, outputs


def alarms(template):
    return [r["Properties"] for r in resources(template, "AWS::CloudWatch::Alarm").values()]


def alarmed(template, namespace, metric):
    found = set()
    for a in alarms(template):
        if a["Namespace"] == namespace and a["MetricName"] == metric:
            assert a["Threshold"] == 0 and a["ComparisonOperator"] == "GreaterThanThreshold"
            found.add(token(a["Dimensions"][0]["Value"]))
    return found


def test_every_function_alarms_on_errors(template):
    assert alarmed(template, "AWS/Lambda", "Errors") == {f"Ref:{logical}" for logical in FUNCTIONS.values()}


def test_export_alarms_on_throttles(template):
    assert alarmed(template, "AWS/Lambda", "Throttles") == {"Ref:ExportFunction"}


def test_dead_letter_queue_alarms_on_any_message(template):
    assert alarmed(template, "AWS/SQS", "ApproximateNumberOfMessagesVisible") == {"DeadLetterQueue.QueueName"}


def test_alarms_notify_the_optional_topic(template):
    for a in alarms(template):
        assert a["AlarmActions"] == {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}


def test_parameters_and_outputs(template):
    assert {
        "JiraClientId",
        "ConfluenceClientId",
        "JiraScopes",
        "ConfluenceScopes",
        "AllowedReturnUrls",
        "RetentionDays",
        "JobRetentionDays",
        "LogRetentionDays",
        "CallbackUrl",
        "AlarmTopicArn",
    } <= set(template["Parameters"])
    assert template["Parameters"]["JiraScopes"]["Default"] == "read:jira-work read:jira-user offline_access"
    assert template["Parameters"]["ConfluenceScopes"]["Default"] == (
        "read:confluence-content.all search:confluence read:confluence-space.summary offline_access"
    )
    assert template["Parameters"]["JobRetentionDays"]["Default"] == 30
    assert {"CallbackUrl", "ApiUrl", "BucketName", "EventBusName", "TableName"} <= set(template["Outputs"])


# ---------------------------------------------------------------- KMS conditions


def kms_use(template, name):
    """(envelope actions, {service: actions}) the role grants; fails on an unconditioned grant."""
    envelope, via = set(), {}
    for st in statements(template, role_id(template, name)):
        actions = {a for a in as_list(st["Action"]) if a.startswith("kms:")}
        if not actions:
            continue
        cond = st.get("Condition", {})
        assert set(cond) == {"StringEquals"}, f"{name}: KMS statement {st.get('Sid')} without its condition"
        equals = cond["StringEquals"]
        if "kms:EncryptionContext:purpose" in equals:
            assert set(equals) == {"kms:EncryptionContext:purpose"}, st.get("Sid")
            assert equals["kms:EncryptionContext:purpose"] == ENVELOPE_PURPOSE, st.get("Sid")
            envelope |= actions
        else:
            assert set(equals) == {"kms:ViaService"}, f"{name}: {st.get('Sid')} is neither envelope nor via a service"
            for service in as_list(equals["kms:ViaService"]):
                short = token(service).removesuffix(".${AWS::Region}.amazonaws.com")
                via.setdefault(short, set()).update(actions)
    return envelope, via


@pytest.mark.parametrize("name", FUNCTIONS)
def test_kms_is_used_only_for_token_envelopes_or_through_named_services(template, name):
    envelope, via = kms_use(template, name)
    assert envelope == KMS_USE[name]["envelope"]
    assert via == KMS_USE[name]["via"]


def test_a_kms_grant_without_its_condition_fails_the_check(template):
    """The check above cannot pass a broadened grant: drop one condition and it fails."""
    broken = copy.deepcopy(template)
    role = props(broken, role_id(broken, "export"))
    for st in role["Policies"][0]["PolicyDocument"]["Statement"]:
        if st.get("Sid") == "TokenEnvelopes":
            del st["Condition"]
    with pytest.raises(AssertionError):
        kms_use(broken, "export")


def test_the_envelope_purpose_is_the_vaults():
    assert ENVELOPE_PURPOSE == "atlassian-oauth-tokens"
