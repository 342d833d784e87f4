"""The deployment and its documentation agree with the code: the OpenAPI document is valid
and names exactly the routes the axum routers register, and template.yaml deploys exactly
the function crates in functions/, wires them as the routers expect, and declares the
table the DynamoDB adapter documents."""

import pathlib
import re

import pytest
import yaml
from openapi_spec_validator import validate

SERVICE = pathlib.Path(__file__).resolve().parents[1]
REPO = SERVICE.parents[1]
HTTP_SRC = SERVICE / "src" / "http"
OPENAPI = SERVICE / "openapi.yaml"
TEMPLATE = REPO / "template.yaml"
FUNCTIONS = REPO / "functions"
TABLE_README = REPO / "shared" / "connector-aws" / "README.md"

HTTP_METHODS = ("get", "post", "put", "delete", "patch")


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (`!Ref`, `!GetAtt`, `!Sub`, ...) as their
    long forms."""


def _cfn_tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _cfn_tag)


@pytest.fixture(scope="module")
def openapi():
    return yaml.safe_load(OPENAPI.read_text())


@pytest.fixture(scope="module")
def template():
    return yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)


def router_routes(source: pathlib.Path) -> set[tuple[str, str]]:
    """(method, path) of every `.route("path", get(..).post(..))` in a router file."""
    text = source.read_text()
    starts = [m.start() for m in re.finditer(r"\.route\(", text)]
    routes = set()
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        chunk = text[start:end]
        for stop in (".fallback(", ".with_state("):
            chunk = chunk.split(stop, 1)[0]
        path = re.match(r'\.route\(\s*"([^"]+)"', chunk)
        assert path, f"a .route( without a literal path in {source.name}: {chunk[:80]!r}"
        methods = re.findall(r"\b(" + "|".join(HTTP_METHODS) + r")\(", chunk)
        assert methods, f"route {path.group(1)} in {source.name} has no method"
        routes.update((m, path.group(1)) for m in methods)
    return routes


def documented_routes(openapi: dict, prefix: str = "") -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in openapi["paths"].items()
        if path.startswith(prefix)
        for method in item
        if method in HTTP_METHODS
    }


def functions_of(template: dict) -> dict[str, dict]:
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def binary_of(resource: dict) -> str:
    return resource["Metadata"]["BuildProperties"]["Binary"]


def http_routes(template: dict) -> set[tuple[str, str, str]]:
    """(method, path, binary) of every HttpApi event in the template."""
    return {
        (event["Properties"]["Method"].lower(), event["Properties"]["Path"], binary_of(fn))
        for fn in functions_of(template).values()
        for event in fn["Properties"].get("Events", {}).values()
        if event["Type"] == "HttpApi"
    }


def route_serves(route_path: str, path: str) -> bool:
    """Whether an API Gateway route path (`{x}` one segment, `{x+}` the rest) serves a
    concrete or documented path."""
    pattern = ""
    for segment in route_path.strip("/").split("/"):
        if re.fullmatch(r"\{[^}]+\+\}", segment):
            pattern += r"/.+"
        elif re.fullmatch(r"\{[^}]+\}", segment):
            pattern += r"/[^/]+"
        else:
            pattern += "/" + re.escape(segment)
    return re.fullmatch(pattern, path) is not None


# ---------------------------------------------------------------------------- OpenAPI


def test_the_openapi_document_is_valid(openapi):
    validate(openapi)


def test_every_admin_route_is_documented_and_every_documented_admin_route_exists(openapi):
    in_code = router_routes(HTTP_SRC / "admin.rs")
    assert len(in_code) >= 20, f"the route parser found only {sorted(in_code)}"
    in_docs = documented_routes(openapi, "/admin")
    assert sorted(in_code - in_docs) == [], "routes in admin.rs missing from openapi.yaml"
    assert sorted(in_docs - in_code) == [], "openapi.yaml documents routes admin.rs lacks"


def test_the_webhook_and_oauth_routes_are_documented(openapi):
    in_code = router_routes(HTTP_SRC / "webhooks.rs") | router_routes(HTTP_SRC / "oauth.rs")
    assert in_code, "no webhook or OAuth route found"
    assert sorted(in_code - documented_routes(openapi)) == []


def test_the_records_routes_are_documented_and_need_the_records_credential(openapi):
    in_code = router_routes(HTTP_SRC / "records.rs")
    assert len(in_code) >= 3, f"the route parser found only {sorted(in_code)}"
    assert sorted(in_code - documented_routes(openapi)) == []
    for method, path in documented_routes(openapi, "/api/records"):
        operation = openapi["paths"][path][method]
        assert operation.get("security") == [{"recordsToken": []}], f"{method} {path}"
        assert "401" in operation["responses"], f"{method} {path} documents no 401"


def test_admin_routes_require_the_bearer_token_and_provider_routes_do_not(openapi):
    assert openapi["security"] == [{"adminToken": []}]
    assert openapi["components"]["securitySchemes"]["adminToken"]["scheme"] == "bearer"
    for method, path in documented_routes(openapi):
        operation = openapi["paths"][path][method]
        if path == "/admin/openapi.yaml":
            assert operation.get("security") == [], "the API's own document is public"
        elif path.startswith("/api/records"):
            continue
        elif path.startswith("/admin"):
            assert "security" not in operation, f"{method} {path} overrides the admin auth"
            assert "401" in operation["responses"], f"{method} {path} documents no 401"
        else:
            assert operation.get("security") == [], f"{method} {path} should need no token"


def test_every_error_code_the_service_answers_is_in_the_error_schema(openapi):
    documented = set(openapi["components"]["schemas"]["Error"]["properties"]["code"]["enum"])
    sources = [HTTP_SRC / "error.rs", HTTP_SRC / "admin.rs", HTTP_SRC / "webhooks.rs"]
    sources.append(REPO / "shared" / "connector" / "src" / "engine" / "admin.rs")
    literal_codes = set()
    for source in sources:
        text = source.read_text()
        literal_codes.update(re.findall(r'StatusCode::[A-Z_]+,\s*"([a-z_]+)"', text))
        literal_codes.update(re.findall(r'\(StatusCode::[A-Z_]+, "([a-z_]+)"\)', text))
        literal_codes.update(re.findall(r'AdminError::\w+(?:\(_\))? => "([a-z_]+)"', text))
    log_codes = re.findall(
        r'ErrorCode::\w+ => "([a-z_]+)"',
        (REPO / "shared" / "connector" / "src" / "model" / "error_code.rs").read_text(),
    )
    assert len(literal_codes) >= 10, f"the code parser found only {sorted(literal_codes)}"
    assert sorted((literal_codes | set(log_codes)) - documented) == []


# ---------------------------------------------------------------------------- template.yaml


def test_every_function_folder_is_deployed_once_under_its_own_binary(template):
    crates = [p for p in FUNCTIONS.iterdir() if (p / "Cargo.toml").is_file()]
    binaries_here = [p for p in crates if (p / "src" / "main.rs").is_file()]
    # A Lambda function is a binary on the Lambda runtime; the other binary is sync-server,
    # the same service as one process, which is never deployed to Lambda. The rest (shared
    # Lambda adapters) must be libraries.
    on_lambda = re.compile(r"^lambda_(http|runtime)\b", re.M)
    folders = sorted(p.name for p in binaries_here if on_lambda.search((p / "Cargo.toml").read_text()))
    assert folders, "no function crates found"
    servers = sorted(p.name for p in binaries_here if p.name not in folders)
    assert servers == ["sync-server"], f"binaries in functions/ that are not Lambda functions: {servers}"
    for library in (p for p in crates if p not in binaries_here):
        assert (library / "src" / "lib.rs").is_file(), f"functions/{library.name} is neither a function nor a library"
    binaries = sorted(binary_of(fn) for fn in functions_of(template).values())
    assert binaries == folders
    for folder in folders:
        package = re.search(r'^name\s*=\s*"([^"]+)"', (FUNCTIONS / folder / "Cargo.toml").read_text(), re.M)
        assert package and package.group(1) == folder, f"functions/{folder} builds another binary"


def test_functions_are_built_by_cargo_lambda_for_arm64(template):
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == "provided.al2023"
    assert globals_["Architectures"] == ["arm64"]
    assert globals_["Handler"] == "bootstrap"
    for name, fn in functions_of(template).items():
        assert fn["Metadata"]["BuildMethod"] == "rust-cargolambda", name
        assert fn["Properties"]["CodeUri"] == ".", name


def test_the_http_api_routes_reach_the_functions_whose_routers_serve_them(template, openapi):
    routes = http_routes(template)
    assert routes == {
        ("post", "/webhooks/{provider}", "webhook-intake"),
        ("post", "/webhooks/stripe/{tenant}/{connection}", "webhook-intake"),
        ("get", "/oauth/{provider}/callback", "oauth-callback"),
        ("any", "/admin/{proxy+}", "admin-api"),
        ("any", "/api/records/{proxy+}", "admin-api"),
        ("get", "/console", "admin-api"),
        ("any", "/console/{proxy+}", "admin-api"),
    }
    served_by = [
        ("webhook-intake", "webhooks.rs"),
        ("oauth-callback", "oauth.rs"),
        ("admin-api", "admin.rs"),
        ("admin-api", "records.rs"),
    ]
    for binary, source in served_by:
        for method, path in router_routes(HTTP_SRC / source):
            assert any(
                r_binary == binary and r_method in (method, "any") and route_serves(r_path, path)
                for r_method, r_path, r_binary in routes
            ), f"{method} {path} ({source}) is not routed to {binary}"
    # The console's router is nested under /console in the admin function.
    console = router_routes(REPO / "shared" / "service" / "src" / "console" / "mod.rs")
    assert len(console) >= 10, f"the route parser found only {sorted(console)}"
    for method, path in console:
        full = "/console" + path.rstrip("/")
        assert any(
            r_binary == "admin-api" and r_method in (method, "any") and route_serves(r_path, full)
            for r_method, r_path, r_binary in routes
        ), f"console {method} {full} is not routed to admin-api"
    for method, path in documented_routes(openapi):
        assert any(
            r_method in (method, "any") and route_serves(r_path, path) for r_method, r_path, _ in routes
        ), f"documented {method} {path} has no API Gateway route"


def function_variables(template: dict, binary: str) -> dict:
    """The environment one function runs with: the globals plus its own."""
    variables = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    for fn in functions_of(template).values():
        if binary_of(fn) == binary:
            variables.update(fn["Properties"].get("Environment", {}).get("Variables", {}))
    return variables


def test_every_variable_the_service_reads_is_set(template):
    variables = {}
    for fn in functions_of(template).values():
        variables.update(function_variables(template, binary_of(fn)))
    read = set()
    for source in ("config.rs", "aws.rs"):
        read.update(re.findall(r'\b(?:need|get)\("([A-Z_]+)"\)', (SERVICE / "src" / source).read_text()))
    local_only = {"HUBSPOT_BASE_URL", "STRIPE_BASE_URL"}  # point the providers at local sandboxes
    # Reserved: Lambda sets them in every function (region and the role's credentials).
    set_by_lambda = {"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert {"TABLE_NAME", "RECORD_QUEUE_URL", "TOKEN_ENCRYPTION_KEY", "STRIPE_SECRET_KEY"} <= read, "the env parser broke"
    assert set_by_lambda <= read, "the function reads its credentials another way: update this list"
    assert sorted(read - local_only - set_by_lambda - set(variables)) == []
    assert not set_by_lambda & set(variables), "template.yaml may not set Lambda's reserved variables"
    assert "RUST_LOG" in variables


def test_secrets_come_from_secrets_manager(template):
    for binary, name in (
        ("reconciler", "TOKEN_ENCRYPTION_KEY"),
        ("admin-api", "ADMIN_TOKEN_SECRET"),
        ("record-worker", "HUBSPOT_CLIENT_SECRET"),
        ("record-worker", "STRIPE_SECRET_KEY"),
        ("webhook-intake", "STRIPE_WEBHOOK_SECRETS"),
    ):
        assert "{{resolve:secretsmanager:" in repr(function_variables(template, binary)[name]), name


def test_each_function_holds_only_the_secrets_it_uses(template):
    holders = {
        "ADMIN_TOKEN_SECRET": {"admin-api"},
        "STRIPE_WEBHOOK_SECRETS": {"webhook-intake"},
    }
    for name, allowed in holders.items():
        holding = {
            binary_of(fn)
            for fn in functions_of(template).values()
            if name in function_variables(template, binary_of(fn))
        }
        assert holding == allowed, f"{name} is held by {sorted(holding)}"


def test_the_table_is_the_one_the_dynamodb_adapter_documents(template):
    block = re.search(r"```yaml\n(StateTable:.*?)```", TABLE_README.read_text(), re.S)
    assert block, "the README's StateTable block is gone"
    documented = yaml.safe_load(block.group(1))["StateTable"]
    table = template["Resources"]["StateTable"]
    assert table["Type"] == documented["Type"]
    properties = dict(table["Properties"])
    assert properties.pop("PointInTimeRecoverySpecification") == {"PointInTimeRecoveryEnabled": True}
    assert properties == documented["Properties"]


def test_queues_redrive_to_dead_letter_queues_after_the_workers_time_out(template):
    resources = template["Resources"]
    functions = {binary_of(fn): fn["Properties"] for fn in functions_of(template).values()}
    default_timeout = template["Globals"]["Function"]["Timeout"]

    def timeout(binary):
        return functions[binary].get("Timeout", default_timeout)

    record = resources["RecordQueue"]["Properties"]
    reconcile = resources["ReconcileQueue"]["Properties"]
    assert record["VisibilityTimeout"] >= 6 * timeout("record-worker")
    assert timeout("reconciler") == 900
    assert reconcile["VisibilityTimeout"] > timeout("reconciler")
    for queue, dlq in (("RecordQueue", "RecordDeadLetterQueue"), ("ReconcileQueue", "ReconcileDeadLetterQueue")):
        redrive = resources[queue]["Properties"]["RedrivePolicy"]
        assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq, "Arn"]}
        assert redrive["maxReceiveCount"] == 5
        assert resources[dlq]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_the_queue_consumers_report_partial_failures_and_the_reconciler_sweeps_every_15_minutes(template):
    events = {binary_of(fn): fn["Properties"]["Events"] for fn in functions_of(template).values()}
    worker = [e["Properties"] for e in events["record-worker"].values() if e["Type"] == "SQS"]
    assert len(worker) == 1
    assert worker[0]["Queue"] == {"Fn::GetAtt": ["RecordQueue", "Arn"]}
    # A burst coalesces: up to 100 jobs an invocation (one HubSpot batch read), gathered
    # for at most a second (SQS requires a window above 10), and the queue hides a batch
    # longer than the worker can take over it.
    assert worker[0]["BatchSize"] == 100
    assert worker[0]["MaximumBatchingWindowInSeconds"] == 1
    worker_fn = next(f for f in functions_of(template).values() if binary_of(f) == "record-worker")
    visibility = template["Resources"]["RecordQueue"]["Properties"]["VisibilityTimeout"]
    assert visibility >= worker_fn["Properties"]["Timeout"] + worker[0]["MaximumBatchingWindowInSeconds"]
    assert worker[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert "MaximumConcurrency" in worker[0]["ScalingConfig"]
    reconciler = events["reconciler"]
    queue = next(e["Properties"] for e in reconciler.values() if e["Type"] == "SQS")
    assert queue["Queue"] == {"Fn::GetAtt": ["ReconcileQueue", "Arn"]}
    assert queue["BatchSize"] == 1
    assert queue["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # One rule for every connection: the sweep starts each nightly pass at its own time.
    schedules = [e["Properties"] for e in reconciler.values() if e["Type"] == "Schedule"]
    assert [s["Schedule"] for s in schedules] == ["rate(15 minutes)"]
    assert "Input" not in schedules[0], "the reconciler reads the scheduled event's own time"


def test_no_policy_grants_every_resource(template):
    def statements(node):
        if isinstance(node, dict):
            if "Effect" in node and "Action" in node:
                yield node
            for value in node.values():
                yield from statements(value)
        elif isinstance(node, list):
            for value in node:
                yield from statements(value)

    found = list(statements(template["Resources"]))
    assert len(found) >= 20, "the policy walker found too few statements"
    for statement in found:
        if statement["Action"] == "sts:AssumeRole":
            continue
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert "*" not in resources, statement
