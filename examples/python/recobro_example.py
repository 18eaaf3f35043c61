#!/usr/bin/env python3
"""Calling Recobro from Python: mutual TLS, an OAuth2 access token, a write, a read, and an
InvalidArgument read field by field from its google.rpc.BadRequest detail.

Generate the stubs first (docs/clients.md):
    python -m grpc_tools.protoc -I proto --python_out=examples/python/gen \
        --grpc_python_out=examples/python/gen proto/recobro/v1/*.proto

Settings (environment):
    RECOBRO_ACCOUNTS      host:port of the accounts service (default localhost:50051)
    RECOBRO_CA            the CA that signed the service's certificate (PEM)
    RECOBRO_CLIENT_CERT   this client's certificate (PEM), for mutual TLS and bound tokens
    RECOBRO_CLIENT_KEY    its private key (PEM)
    RECOBRO_TOKEN         the access token (JWT) from your authorization server, with the
                          scopes recobro:write and recobro:read and your tenant's claim

Prints ids and outcomes only: no names, addresses or phone numbers.
"""

import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().with_name("gen")))

import grpc  # noqa: E402
from google.rpc import error_details_pb2  # noqa: E402
from grpc_status import rpc_status  # noqa: E402
from recobro.v1 import accounts_pb2, accounts_pb2_grpc, common_pb2, events_pb2  # noqa: E402


def read(path_variable):
    with open(os.environ[path_variable], "rb") as file:
        return file.read()


def connect():
    """A channel that presents the client certificate and sends the token on every call."""
    transport = grpc.ssl_channel_credentials(
        root_certificates=read("RECOBRO_CA"),
        private_key=read("RECOBRO_CLIENT_KEY"),
        certificate_chain=read("RECOBRO_CLIENT_CERT"),
    )
    # Sends "authorization: Bearer <token>"; gRPC attaches it only over a secure channel.
    token = grpc.access_token_call_credentials(os.environ["RECOBRO_TOKEN"])
    credentials = grpc.composite_channel_credentials(transport, token)
    return grpc.secure_channel(os.environ.get("RECOBRO_ACCOUNTS", "localhost:50051"), credentials)


def debtor(external_id, time_zone):
    """A company debtor with one accounts-payable email that consented by contract."""
    return accounts_pb2.DebtorInput(
        external_id=external_id,
        name="Example Supplies S.A.S.",
        kind=common_pb2.DEBTOR_KIND_COMPANY,
        time_zone=time_zone,
        locale="es-CO",
        country="CO",
        contacts=[
            events_pb2.Contact(
                name="Accounts payable",
                role=events_pb2.CONTACT_ROLE_ACCOUNTS_PAYABLE,
                points=[
                    events_pb2.ContactPoint(
                        channel=common_pb2.CHANNEL_EMAIL,
                        address="ap@example.com",
                        consent_source="signed contract",
                        preferred=True,
                    )
                ],
            )
        ],
    )


def main():
    external_id = sys.argv[1] if len(sys.argv) > 1 else "PY-1"
    with connect() as channel:
        accounts = accounts_pb2_grpc.AccountsServiceStub(channel)
        # tenant_id is left empty: the token's tenant claim decides it.
        written = accounts.UpsertDebtor(
            accounts_pb2.UpsertDebtorRequest(debtor=debtor(external_id, "America/Bogota")),
            timeout=10,
        )
        debtor_id = written.debtor.debtor_id
        print(f"upserted debtor {debtor_id} (external id {external_id})")

        read_back = accounts.GetDebtor(accounts_pb2.GetDebtorRequest(debtor_id=debtor_id), timeout=10)
        points = sum(len(contact.points) for contact in read_back.contacts)
        print(f"read debtor {read_back.debtor.debtor_id}: zone {read_back.debtor.time_zone}, {points} contact point(s)")

        try:
            accounts.UpsertDebtor(
                accounts_pb2.UpsertDebtorRequest(debtor=debtor(external_id, "Mars/Olympus_Mons")),
                timeout=10,
            )
        except grpc.RpcError as error:
            status = rpc_status.from_call(error)
            fields = []
            for detail in status.details if status else []:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad_request = error_details_pb2.BadRequest()
                    detail.Unpack(bad_request)
                    fields += [violation.field for violation in bad_request.field_violations]
            print(f"refused: {error.code().name}, fields {','.join(fields)}")
        else:
            sys.exit("an unknown time zone was accepted")


if __name__ == "__main__":
    main()
