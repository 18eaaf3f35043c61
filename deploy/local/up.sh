#!/usr/bin/env bash
# Start the local Recobro stack (Kafka, Redis, PostgreSQL) on loopback, after making the dev
# PKI and token signing key the services need (pki.sh) and every principal's password
# ($RECOBRO_STACK_SECRETS). All three speak TLS only and authenticate every client:
#   Kafka       SASL_SSL with SCRAM-SHA-512, ACLs (StandardAuthorizer); principals admin (super
#               user), accounts, scheduling, channels, and the ERP connectors erp-demo, erp-test
#   Redis       TLS, ACL users admin and channels (channels may touch only keys under channels:)
#   PostgreSQL  TLS (hostssl only), scram-sha-256; recobro (administrator), and per service a
#               schema owner <service>_owner and a runtime role <service> (deploy/postgres)
# Installs what is missing; safe and fast to run again.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
export DEBIAN_FRONTEND=noninteractive

STACK="$RECOBRO_STACK_DIR"
KDIR="$STACK/kafka"
mkdir -p "$STACK"

say() { printf '[up] %s\n' "$*"; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

APT_UPDATED=
apt_install() {
  [ -n "$APT_UPDATED" ] || { say "apt-get update"; apt-get update -qq >/dev/null; APT_UPDATED=1; }
  say "apt-get install $*"
  apt-get install -y -qq "$@" >"$STACK/apt.log" 2>&1 || { tail -n 20 "$STACK/apt.log" >&2; exit 1; }
}


# ---------------------------------------------------------------- credentials
# One folder per principal, named as Kubernetes mounts a Secret: kafka-password,
# postgres-password, redis-password. Made once; never printed.
SECRETS="$RECOBRO_STACK_SECRETS"
new_secret() {  # PRINCIPAL FILE: a random password unless one exists
  local f="$SECRETS/$1/$2"
  [ -s "$f" ] && return
  mkdir -p "$SECRETS/$1"; chmod 700 "$SECRETS" "$SECRETS/$1"
  (umask 077; head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32 >"$f")
}
make_secrets() {
  local p
  for p in $KAFKA_PRINCIPALS; do new_secret "$p" kafka-password; done
  for p in admin accounts accounts-owner scheduling scheduling-owner channels channels-owner; do
    new_secret "$p" postgres-password
  done
  for p in admin channels; do new_secret "$p" redis-password; done
  # Signs channels' one-click unsubscribe links (one key per line; the first signs).
  new_secret channels unsubscribe-keys
  # Signs the payment links in reminders (same format: one key per line; the first signs).
  new_secret channels payment-link-keys
}
password() { cat "$SECRETS/$1/$2"; }
KAFKA_PRINCIPALS="admin accounts scheduling channels erp-demo erp-test"

# ---------------------------------------------------------------- Kafka
KAFKA_MAIN_JAR="$RECOBRO_KAFKA_LIBS/kafka_2.13-$RECOBRO_KAFKA_VERSION.jar"
LOG4J_VERSION=2.24.3   # the log4j2 version Kafka 4.x itself depends on

fetch_kafka_jars() {
  [ -f "$KAFKA_MAIN_JAR" ] && return
  say "kafka: resolving $RECOBRO_KAFKA_VERSION jars from Maven Central"
  local tmp; tmp="$(mktemp -d)"
  # Kafka's jars depend on slf4j-api 1.7 and log4j-core, but ship no slf4j
  # binding: log4j-slf4j-impl (the slf4j 1.x one) routes Kafka's logging to log4j2.
  # kafka-tools (TopicCommand) drags in Connect/Jetty, which the topic tool never uses.
  cat >"$tmp/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local</groupId><artifactId>recobro-kafka-runtime</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$RECOBRO_KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$RECOBRO_KAFKA_VERSION</version>
      <exclusions>
        <exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion>
        <exclusion><groupId>com.fasterxml.jackson.jakarta.rs</groupId><artifactId>*</artifactId></exclusion>
      </exclusions>
    </dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
POM
  # Copy into a temp dir and rename, so an interrupted download never looks complete.
  rm -rf "$RECOBRO_KAFKA_LIBS.part"
  mvn -q -B -f "$tmp/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$RECOBRO_KAFKA_LIBS.part" >"$tmp/mvn.log" 2>&1 || { cat "$tmp/mvn.log" >&2; exit 1; }
  rm -rf "$RECOBRO_KAFKA_LIBS" "$tmp"
  mv "$RECOBRO_KAFKA_LIBS.part" "$RECOBRO_KAFKA_LIBS"
}

kafka_pid() {  # prints the broker pid if it is alive (guards against pid reuse)
  local pid; pid="$(cat "$KDIR/kafka.pid" 2>/dev/null)" || return 1
  grep -qa 'kafka.Kafka' "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

# Short-lived admin JVMs: small heap and C1 only, since startup time dominates.
kafka_tool() {
  java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
       -Dlog4j2.configurationFile="$KDIR/log4j2-tools.properties" \
       -cp "$RECOBRO_KAFKA_LIBS/*" "$@"
}

write_kafka_config() {
  mkdir -p "$KDIR/data"
  # The broker's key and certificate in one PEM file, as Kafka's PEM keystore reads them.
  (umask 077; cat "$RECOBRO_PKI_DIR/broker.key" "$RECOBRO_PKI_DIR/broker.pem" >"$KDIR/broker-keystore.pem")
  cat >"$KDIR/server.properties" <<PROPS
# Generated by deploy/local/up.sh: single-node KRaft (broker + controller in one JVM).
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$RECOBRO_KAFKA_CONTROLLER_PORT
# Clients: SASL_SSL with SCRAM-SHA-512 only. The controller listener: TLS with a client
# certificate (KRaft controllers cannot use SCRAM); only the broker itself holds one.
listeners=SASL_SSL://127.0.0.1:$RECOBRO_KAFKA_PORT,CONTROLLER://127.0.0.1:$RECOBRO_KAFKA_CONTROLLER_PORT
advertised.listeners=SASL_SSL://127.0.0.1:$RECOBRO_KAFKA_PORT
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(password admin kafka-password)";
listener.name.controller.ssl.client.auth=required
ssl.keystore.type=PEM
ssl.keystore.location=$KDIR/broker-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$RECOBRO_PKI_DIR/ca.pem
ssl.endpoint.identification.algorithm=https
# ACLs decide: each service its own topics and groups, each connector its tenant's topic.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:CN=recobro-kafka-broker,O=Recobro development
log.dirs=$KDIR/data
num.partitions=6
default.replication.factor=1
min.insync.replicas=1
# Internal topics default to 3 replicas, which a single node cannot host.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Topics are declared explicitly below; a typo must fail, not create a topic.
auto.create.topics.enable=false
PROPS
  # The broker logs to stdout, which nohup sends to kafka.log (one file, JVM errors included).
  cat >"$KDIR/log4j2.properties" <<'PROPS'
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.kafka.name = org.apache.kafka
logger.kafka.level = INFO
PROPS
  # Admin tools: warnings only, on stderr, so their stdout stays parseable.
  sed -e 's/^rootLogger.level = .*/rootLogger.level = WARN/' -e 's/^logger.kafka.level = .*/logger.kafka.level = WARN/' \
      -e '/appender.out.type/a appender.out.target = SYSTEM_ERR' \
      "$KDIR/log4j2.properties" >"$KDIR/log4j2-tools.properties"
}

start_kafka() {
  if pid="$(kafka_pid)"; then say "kafka: already running (pid $pid)"; return; fi
  # Otherwise the readiness check below would be answered by that other process.
  if port_open "$RECOBRO_KAFKA_PORT"; then say "kafka: port $RECOBRO_KAFKA_PORT is used by another process"; exit 1; fi
  fetch_kafka_jars
  write_kafka_config
  # SCRAM credentials can only be bootstrapped when the storage is formatted: a log dir formatted
  # for other passwords (or before authentication existed) is throwaway dev data, formatted again.
  local creds p
  creds="$(for p in $KAFKA_PRINCIPALS; do password "$p" kafka-password; done | sha256sum | cut -c1-16)"
  if [ -f "$KDIR/data/meta.properties" ] && [ "$(cat "$KDIR/credentials.sum" 2>/dev/null)" != "$creds" ]; then
    say "kafka: the storage predates these credentials; formatting it again (dev data is lost)"
    rm -rf "$KDIR/data"; mkdir -p "$KDIR/data"
  fi
  # Format the KRaft storage once; meta.properties marks a formatted log dir.
  if [ ! -f "$KDIR/data/meta.properties" ]; then
    # Any 16 random bytes in URL-safe base64 is a valid cluster id (saves a JVM start).
    # It may start with '-', hence --cluster-id=ID rather than -t ID.
    local id scram=(); id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    for p in $KAFKA_PRINCIPALS; do
      scram+=(--add-scram "SCRAM-SHA-512=[name=$p,password=$(password "$p" kafka-password)]")
    done
    say "kafka: formatting storage (cluster id $id) with SCRAM credentials for: $KAFKA_PRINCIPALS"
    kafka_tool kafka.tools.StorageTool format --cluster-id="$id" -c "$KDIR/server.properties" "${scram[@]}" >/dev/null
    echo "$creds" >"$KDIR/credentials.sum"
  fi
  say "kafka: starting broker on $KAFKA_BROKERS"
  # setsid: the broker must outlive this script and its terminal.
  setsid nohup java -Xms256m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$KDIR/log4j2.properties" \
      -cp "$RECOBRO_KAFKA_LIBS/*" kafka.Kafka "$KDIR/server.properties" \
      >>"$KDIR/kafka.log" 2>&1 </dev/null &
  echo $! >"$KDIR/kafka.pid"
}

# The admin tools' client settings: SASL_SSL as the admin principal.
write_admin_client_config() {
  (umask 077; cat >"$KDIR/admin.properties" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(password admin kafka-password)";
ssl.truststore.type=PEM
ssl.truststore.location=$RECOBRO_PKI_DIR/ca.pem
PROPS
  )
}

wait_kafka() {
  local deadline=$((SECONDS + 90))
  write_admin_client_config
  until port_open "$RECOBRO_KAFKA_PORT" && TOPICS="$(kafka_tool org.apache.kafka.tools.TopicCommand \
          --bootstrap-server "$KAFKA_BROKERS" --command-config "$KDIR/admin.properties" --list 2>/dev/null)"; do
    if ! kafka_pid >/dev/null || [ $SECONDS -ge $deadline ]; then
      say "kafka: did not come up; last log lines:"; tail -n 40 "$KDIR/kafka.log" >&2; exit 1
    fi
    sleep 1
  done
  say "kafka: ready"
}

create_topics() {
  # A JVM start costs seconds, so only missing topics get a TopicCommand call.
  local spec name parts
  # Tenants' ERP topics (erp.invoices.v1.<tenant id>) are made when a tenant is onboarded.
  for spec in accounts.events.v1:6 reminders.due.v1:6 \
              channel.deliveries.v1:6 channel.responses.v1:6 collections.escalations.v1:6 payments.events.v1:6 recobro.deadletter.v1:3; do
    name="${spec%:*}"; parts="${spec#*:}"
    grep -qxF "$name" <<<"$TOPICS" && continue
    say "kafka: creating topic $name ($parts partitions)"
    kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS" \
        --command-config "$KDIR/admin.properties" --create \
        --if-not-exists --topic "$name" --partitions "$parts" --replication-factor 1 >/dev/null
  done
}

# ---------------------------------------------------------------- Redis
redis_admin() {  # redis-cli over TLS as the admin user
  REDISCLI_AUTH="$(password admin redis-password)" redis-cli --tls --cacert "$RECOBRO_PKI_DIR/ca.pem" \
      -h 127.0.0.1 -p "$RECOBRO_REDIS_PORT" --user admin --no-auth-warning "$@"
}

start_redis() {
  command -v redis-server >/dev/null || apt_install redis-server
  local dir="$STACK/redis"
  mkdir -p "$dir"
  # Users, rewritten each time so they follow the password files. channels may use only keys
  # under `channels:` and no administrative or dangerous command (FLUSHALL, CONFIG, KEYS, ...).
  # `default` is off: no client can log in as it. Redis 7.0 replays the append-only file as
  # `default`, and checks the transactions it replays (every script's writes) against its
  # rules: without them a restart silently drops every contact budget reservation.
  (umask 077; cat >"$dir/users.acl" <<ACL
user default off ~* &* +@all
user admin on >$(password admin redis-password) ~* &* +@all
user channels on >$(password channels redis-password) ~channels:* resetchannels +@all -@dangerous -@admin
ACL
  )
  if redis_admin ping >/dev/null 2>&1; then
    redis_admin ACL LOAD >/dev/null
    say "redis: already running"; return
  fi
  if port_open "$RECOBRO_REDIS_PORT"; then
    say "redis: port $RECOBRO_REDIS_PORT is used by another process (a Redis without TLS from an older stack? run deploy/local/down.sh)"
    exit 1
  fi
  say "redis: starting on 127.0.0.1:$RECOBRO_REDIS_PORT (TLS only, ACL users)"
  # Persistence as the README recommends for production (append-only file, fsync every second):
  # contact budgets and send claims survive a restart. TLS only (port 0 closes plaintext).
  redis-server --port 0 --tls-port "$RECOBRO_REDIS_PORT" --bind 127.0.0.1 \
      --tls-cert-file "$RECOBRO_PKI_DIR/server.pem" --tls-key-file "$RECOBRO_PKI_DIR/server.key" \
      --tls-ca-cert-file "$RECOBRO_PKI_DIR/ca.pem" --tls-auth-clients no \
      --aclfile "$dir/users.acl" --daemonize yes --dir "$dir" \
      --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --save '' --appendonly yes --appendfsync everysec
  local i
  for i in $(seq 50); do redis_admin ping >/dev/null 2>&1 && return; sleep 0.2; done
  say "redis: did not answer"; tail -n 20 "$dir/redis.log" >&2; exit 1
}

# ---------------------------------------------------------------- PostgreSQL
start_postgres() {
  ls -d /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
  local bin; bin="$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")"
  local pg="$STACK/pg" as_pg=()
  mkdir -p "$pg/run"
  # PostgreSQL refuses to run as root: run it as the `postgres` system user.
  if [ "$(id -u)" = 0 ]; then
    as_pg=(runuser -u postgres --)
    chown postgres: "$pg" "$pg/run"
    # The repo may sit under root-owned dirs without o+x; postgres must traverse them.
    local d="$pg"
    while ! "${as_pg[@]}" test -x "$pg" && [ "$d" != / ]; do d="$(dirname "$d")"; chmod o+x "$d"; done
  fi
  if [ ! -f "$pg/data/PG_VERSION" ]; then
    say "postgres: initdb in $pg/data"
    (umask 077; password admin postgres-password >"$pg/pwfile"); chown --reference="$pg" "$pg/pwfile"
    # The bootstrap superuser is recobro itself, the stack's administrator.
    "${as_pg[@]}" "$bin/initdb" -D "$pg/data" -U recobro --pwfile="$pg/pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$pg/initdb.log"
    rm -f "$pg/pwfile"
  fi
  # TLS with the dev server certificate; the key must belong to the server's user, mode 600.
  mkdir -p "$pg/tls"
  cp "$RECOBRO_PKI_DIR/server.pem" "$pg/tls/server.pem"
  (umask 077; cp "$RECOBRO_PKI_DIR/server.key" "$pg/tls/server.key")
  # Over TCP only TLS with a password; the socket (mode 700, for this script) trusts its user.
  cat >"$pg/data/pg_hba.conf" <<HBA
local     all all                 trust
hostssl   all all 127.0.0.1/32    scram-sha-256
host      all all 0.0.0.0/0       reject
HBA
  if [ "$(id -u)" = 0 ]; then chown -R postgres: "$pg/tls" "$pg/data/pg_hba.conf"; fi
  local options="-p $RECOBRO_PG_PORT -k $pg/run -c unix_socket_permissions=0700 -c listen_addresses=127.0.0.1"
  options+=" -c ssl=on -c ssl_cert_file=$pg/tls/server.pem -c ssl_key_file=$pg/tls/server.key -c ssl_min_protocol_version=TLSv1.2"
  # fsync & co. off: throwaway dev data, and much faster tests. RECOBRO_PG_DURABLE=1 turns them
  # on, as production runs (`RECOBRO_PG_DURABLE=1 make bench` records the durable figures).
  local fsync=off
  [ "${RECOBRO_PG_DURABLE:-0}" = 1 ] && fsync=on
  options+=" -c fsync=$fsync -c synchronous_commit=$fsync -c full_page_writes=$fsync -c max_connections=200"
  if "${as_pg[@]}" "$bin/pg_ctl" status -D "$pg/data" >/dev/null 2>&1; then
    say "postgres: already running"
    "${as_pg[@]}" "$bin/pg_ctl" reload -D "$pg/data" >/dev/null
  else
    say "postgres: starting on 127.0.0.1:$RECOBRO_PG_PORT (TLS only over TCP)"
    "${as_pg[@]}" "$bin/pg_ctl" start -w -t 60 -D "$pg/data" -l "$pg/postgres.log" -o "$options" >/dev/null \
      || { tail -n 20 "$pg/postgres.log" >&2; exit 1; }
  fi
  "$bin/pg_isready" -q -h 127.0.0.1 -p "$RECOBRO_PG_PORT" -t 30
  local psql=("$bin/psql" -h "$pg/run" -p "$RECOBRO_PG_PORT" -U recobro -d postgres -qtAX)
  if [ -z "$("${psql[@]}" -c "select 1 from pg_database where datname = 'recobro'")" ]; then
    say "postgres: creating database recobro"
    "${psql[@]}" -c 'create database recobro'
  fi
  if [ "$("${psql[@]}" -c 'show ssl')" != on ]; then
    say "postgres: restarting to turn TLS on"
    "${as_pg[@]}" "$bin/pg_ctl" restart -w -t 60 -D "$pg/data" -l "$pg/postgres.log" -o "$options" >/dev/null
  elif [ "$("${psql[@]}" -c 'show fsync')" != "$fsync" ]; then
    say "postgres: restarting with fsync and synchronous commit $fsync"
    "${as_pg[@]}" "$bin/pg_ctl" restart -w -t 60 -D "$pg/data" -l "$pg/postgres.log" -o "$options" >/dev/null
  fi
  # Per service: a schema owner (migrations) and a runtime role (rows only). Passwords follow
  # the files; then the schemas and grants (deploy/postgres/schemas.sql).
  local service role
  for service in accounts scheduling channels; do
    for role in "$service" "${service}_owner"; do
      "${psql[@]}" -v ON_ERROR_STOP=1 -v role="$role" -v pw="$(password "${role/_owner/-owner}" postgres-password)" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'pw';
SQL
    done
  done
  "$bin/psql" -h "$pg/run" -p "$RECOBRO_PG_PORT" -U recobro -d recobro -qtAX -v ON_ERROR_STOP=1 \
      -f "$REPO/deploy/postgres/schemas.sql" >/dev/null
}

# Certificates, the token signing key and passwords first: cheap, and everything needs them.
bash "$(dirname "${BASH_SOURCE[0]}")/pki.sh"
make_secrets
# Kafka first: its JVM boots while Redis and PostgreSQL start.
start_kafka
start_redis
start_postgres
wait_kafka
create_topics

say "ready:"
echo "  KAFKA_BROKERS=$KAFKA_BROKERS (SASL_SSL, SCRAM-SHA-512)"
echo "  REDIS_URL=$REDIS_URL (TLS, ACL users)"
echo "  DATABASE_URL=$DATABASE_URL (TLS, verify-full)"
echo "  credentials: $RECOBRO_STACK_SECRETS/<principal>/{kafka,postgres,redis}-password"
echo "  RECOBRO_TLS_CERT=$RECOBRO_TLS_CERT"
echo "  RECOBRO_TLS_KEY=$RECOBRO_TLS_KEY"
echo "  RECOBRO_TLS_CLIENT_CA=$RECOBRO_TLS_CLIENT_CA"
echo "  RECOBRO_JWKS=$RECOBRO_JWKS (issuer $RECOBRO_TOKEN_ISSUER, audience $RECOBRO_TOKEN_AUDIENCE)"
echo "  dev client: $RECOBRO_DEV_CLIENT_CERT, $RECOBRO_DEV_CLIENT_KEY (CA $RECOBRO_DEV_CA)"
echo "  token signing key: $RECOBRO_DEV_SIGNING_KEY (kid $(cat "$RECOBRO_PKI_DIR/signing.kid"))"
