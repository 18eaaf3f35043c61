# The two commands a newcomer needs are `make demo` and `make test`.
.PHONY: demo test lint up down chaos bench

demo: ## stack up, services built and started, a demo portfolio published, reminders shown
	bash deploy/local/demo.sh

test: ## unit and end-to-end tests against the real local stack
	bash deploy/local/test.sh

chaos: ## the full chaos run (100,000 reminders, release builds); `make test` runs a short one
	bash deploy/local/chaos.sh

bench: ## every benchmark (release builds, real stack), one line per figure, compared with docs/benchmarks.md
	bash deploy/local/bench.sh

lint: ## formatting, clippy, the dependency check (deny.toml), the Kubernetes manifests and the protos (buf lint, buf breaking), as CI runs them
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cargo deny --locked check bans licenses sources
	bash deploy/manifests/check.sh
	bash deploy/proto/check.sh

up: ## only the local stack (Kafka, Redis, PostgreSQL)
	bash deploy/local/up.sh

down: ## stop the services and the stack
	bash deploy/local/services.sh stop
	bash deploy/local/down.sh
