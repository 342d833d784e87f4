# The two commands of this project. Everything they need installs from the repository.
.PHONY: test dev

## Run every check and test (installs the Python test tools into .venv if missing).
test:
	bash infra/scripts/test.sh

## Run the whole service locally: embedded store and queue, provider sandboxes, no AWS account.
dev:
	bash infra/scripts/dev.sh $(ARGS)
