# Recobro local stack settings. Sourced by up.sh/down.sh, and by developers:
#   source deploy/local/env.sh
# Every value keeps an existing environment value, so anything can be overridden.
# (No `set -e` here: this file must not change the options of a sourcing shell.)

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# Data dirs, logs and pid files (git-ignored).
export RECOBRO_STACK_DIR="${RECOBRO_STACK_DIR:-$REPO/.stack}"

# Kafka is run straight from Maven Central jars; the cache lives outside the repo
# so that fresh clones and re-runs need no download.
export RECOBRO_KAFKA_VERSION="${RECOBRO_KAFKA_VERSION:-4.1.1}"
export RECOBRO_KAFKA_LIBS="${RECOBRO_KAFKA_LIBS:-${XDG_CACHE_HOME:-$HOME/.cache}/recobro/kafka-$RECOBRO_KAFKA_VERSION/libs}"
export RECOBRO_KAFKA_PORT="${RECOBRO_KAFKA_PORT:-19092}"
export RECOBRO_KAFKA_CONTROLLER_PORT="${RECOBRO_KAFKA_CONTROLLER_PORT:-19093}"
export RECOBRO_REDIS_PORT="${RECOBRO_REDIS_PORT:-16379}"
export RECOBRO_PG_PORT="${RECOBRO_PG_PORT:-15432}"

# What the services read. Kafka, Redis and PostgreSQL speak TLS only and authenticate every
# client; passwords live in files, one folder per principal (made by up.sh):
#   $RECOBRO_STACK_SECRETS/<principal>/{kafka-password,postgres-password,redis-password}
export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:$RECOBRO_KAFKA_PORT}"
export REDIS_URL="${REDIS_URL:-rediss://127.0.0.1:$RECOBRO_REDIS_PORT}"
export DATABASE_URL="${DATABASE_URL:-postgres://recobro@127.0.0.1:$RECOBRO_PG_PORT/recobro}"
export RECOBRO_STACK_SECRETS="${RECOBRO_STACK_SECRETS:-$RECOBRO_STACK_DIR/secrets}"
# A shell, the tests, benchmarks and tools act as the stack's administrator (Kafka super user,
# Redis admin, PostgreSQL superuser). services.sh and the end-to-end tests run each service as
# its own principal instead: RECOBRO_SECRETS_DIR=$RECOBRO_STACK_SECRETS/<service> and
# RECOBRO_{KAFKA,REDIS,DATABASE}_USER(NAME)=<service>.
export RECOBRO_SECRETS_DIR="${RECOBRO_SECRETS_DIR:-$RECOBRO_STACK_SECRETS/admin}"
export RECOBRO_KAFKA_USERNAME="${RECOBRO_KAFKA_USERNAME:-admin}"
export RECOBRO_REDIS_USERNAME="${RECOBRO_REDIS_USERNAME:-admin}"
# The demo's ERP connector publishes as erp-demo, which may write only its tenant's topic.
export RECOBRO_DEMO_CONNECTOR_PASSWORD_FILE="${RECOBRO_DEMO_CONNECTOR_PASSWORD_FILE:-$RECOBRO_STACK_SECRETS/erp-demo/kafka-password}"

# Identity: TLS on every gRPC port and OAuth2 access tokens are always on. pki.sh (run by up.sh)
# makes a dev CA, certificates and a token signing key in $RECOBRO_PKI_DIR; see README.md.
export RECOBRO_PKI_DIR="${RECOBRO_PKI_DIR:-$RECOBRO_STACK_DIR/pki}"
export RECOBRO_TLS_CERT="${RECOBRO_TLS_CERT:-$RECOBRO_PKI_DIR/server.pem}"
export RECOBRO_TLS_KEY="${RECOBRO_TLS_KEY:-$RECOBRO_PKI_DIR/server.key}"
export RECOBRO_TLS_CLIENT_CA="${RECOBRO_TLS_CLIENT_CA:-$RECOBRO_PKI_DIR/ca.pem}"
export RECOBRO_JWKS="${RECOBRO_JWKS:-$RECOBRO_PKI_DIR/jwks.json}"
export RECOBRO_TOKEN_ISSUER="${RECOBRO_TOKEN_ISSUER:-https://recobro.local/dev}"
export RECOBRO_TOKEN_AUDIENCE="${RECOBRO_TOKEN_AUDIENCE:-recobro}"
export RECOBRO_GRPC_REFLECTION="${RECOBRO_GRPC_REFLECTION:-true}"
# The local stack sends nothing: every channel's provider is the sandbox, chosen explicitly
# (channels has no default). Its one-click unsubscribe key is made by up.sh.
export RECOBRO_EMAIL_PROVIDER="${RECOBRO_EMAIL_PROVIDER:-sandbox}"
export RECOBRO_SMS_PROVIDER="${RECOBRO_SMS_PROVIDER:-sandbox}"
export RECOBRO_WHATSAPP_PROVIDER="${RECOBRO_WHATSAPP_PROVIDER:-sandbox}"
# Payment links: the sandbox checkout for every tenant (deploy/local/payments.toml).
export RECOBRO_PAYMENT_PROVIDERS_FILE="${RECOBRO_PAYMENT_PROVIDERS_FILE:-$REPO/deploy/local/payments.toml}"
# The dev CA signs the broker's, Redis's and PostgreSQL's certificates too.
export RECOBRO_KAFKA_CA="${RECOBRO_KAFKA_CA:-$RECOBRO_PKI_DIR/ca.pem}"
export RECOBRO_REDIS_CA="${RECOBRO_REDIS_CA:-$RECOBRO_PKI_DIR/ca.pem}"
export RECOBRO_DATABASE_CA="${RECOBRO_DATABASE_CA:-$RECOBRO_PKI_DIR/ca.pem}"
# What clients use (recobro-token, tests, grpcurl examples): the dev CA and a client certificate.
export RECOBRO_DEV_CA="${RECOBRO_DEV_CA:-$RECOBRO_PKI_DIR/ca.pem}"
export RECOBRO_DEV_CLIENT_CERT="${RECOBRO_DEV_CLIENT_CERT:-$RECOBRO_PKI_DIR/client.pem}"
export RECOBRO_DEV_CLIENT_KEY="${RECOBRO_DEV_CLIENT_KEY:-$RECOBRO_PKI_DIR/client.key}"
export RECOBRO_DEV_SIGNING_KEY="${RECOBRO_DEV_SIGNING_KEY:-$RECOBRO_PKI_DIR/signing.key}"
# Empty until pki.sh has run once: source this file again afterwards (demo.sh and test.sh do).
export RECOBRO_DEV_SIGNING_KID="${RECOBRO_DEV_SIGNING_KID:-$(cat "$RECOBRO_PKI_DIR/signing.kid" 2>/dev/null || true)}"
