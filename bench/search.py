"""Benchmark: full-text search on the reads' data set (100k conversations, 2M messages,
each message carrying a few Portuguese words drawn from ``WORDS``, common ones more
often, so a word matches from a handful to a quarter of the messages).

Each search, one word and three words, is timed as the results page through Django's
whole stack (in process, as the reads are) against its raw SQL: the very statements
the page's search ran (captured from it), re-run on a plain psycopg connection.
"""

from __future__ import annotations

import time

from bench.common import ms, pct

# A support desk's vocabulary; accents included, so the index folds them as it works.
WORDS = (
    "pedido entrega boleto pagamento cobrança ação endereço orçamento prazo troca "
    "devolução nota fiscal cartão crédito débito pix transferência cadastro senha acesso "
    "aplicativo site loja produto estoque tamanho cor modelo garantia defeito conserto "
    "técnico visita agendamento horário segunda terça quarta quinta sexta sábado domingo "
    "manhã tarde noite urgente atraso cancelamento reembolso desconto cupom promoção frete "
    "correio transportadora rastreio código número protocolo atendimento reclamação elogio "
    "dúvida informação contrato plano assinatura mensalidade fatura vencimento juros multa "
    "parcela renegociação acordo cliente empresa filial matriz gerente vendedor consultor "
    "suporte sistema erro falha instalação configuração internet telefone celular "
    "email mensagem documento comprovante recibo foto vídeo áudio arquivo anexo formulário "
    "confirmação aprovação análise liberação bloqueio desbloqueio ativação migração "
    "portabilidade upgrade renovação vistoria seguro sinistro apólice franquia cobertura "
    "consulta exame resultado receita farmácia medicamento clínica hospital matrícula "
    "mensalista curso aula certificado bolsa viagem reserva passagem hotel bagagem voo"
).split()

# Words per generated message, each drawn as WORDS[floor(len * u²)] for a uniform u:
# the first words are common, the last ones rare.
PER_MESSAGE = 6


def words_sql() -> str:
    """The SQL that appends ``PER_MESSAGE`` drawn words to a generated message, for
    ``reads.generate``'s INSERT (``a.id``: the conversation, ``r``: the round; the
    array comes as the ``words`` parameter)."""
    draws = [
        f"(%(words)s::text[])[1 + floor({len(WORDS)} * power("
        f"(hashint8(a.id * 64 + r * 8 + {k}) & 2147483647)::float8 / 2147483648, 2))::int]"
        for k in range(PER_MESSAGE)
    ]
    return " || ' ' || ".join(draws)


# The searches timed: a word of middling frequency, and three more common ones together.
ONE_WORD = "cobranca"  # typed without the accent
THREE_WORDS = "boleto pagamento pedido"


SEARCHED = ("whatsapp_mensagens", "whatsapp_contacts", "whatsapp_atendimentos")


def _time_pair(ours, base, repeat: int) -> tuple[list[float], list[float]]:
    """Both timed in turns, so a busy moment of the machine falls on both alike."""
    for _ in range(3):
        ours()
        base()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for fn, out in ((ours, times[0]), (base, times[1])):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return times


def _statements(connection, fn) -> list[tuple[str, object]]:
    """The statements ``fn`` runs on ``connection``, with their parameters."""
    captured: list[tuple[str, object]] = []

    def capture(execute, sql, params, many, context):
        captured.append((sql, params))
        return execute(sql, params, many, context)

    # a wrapper, not CaptureQueriesContext: the connection ends with the request
    with connection.execute_wrapper(capture):
        fn()
    return captured


def measure(database_url: str, reader, repeat: int) -> list[dict]:
    import psycopg
    from django.db import close_old_connections, connection
    from django.test import Client
    from django.urls import reverse

    from conversations import search_index
    from conversations.models import Message
    from whatsapp.selectors import visible_session_ids

    client = Client(SERVER_NAME="127.0.0.1")
    client.force_login(reader)
    rows = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        for label, text in (("one word", ONE_WORD), ("three words", THREE_WORDS)):
            url = f"{reverse('conversations:search')}?q={text.replace(' ', '+')}"

            def request(url: str = url) -> None:
                response = client.get(url)
                assert response.status_code == 200, (url, response.status_code)
                close_old_connections()

            # The page's own statements, captured, are the raw baseline; the search's
            # are the ones that read the messages, the contacts and the conversations
            # (which of the matches' conversations the reader sees, on PostgreSQL).
            captured = _statements(connection, request)
            searching = [
                (sql, params) for sql, params in captured if any(table in sql for table in SEARCHED)
            ]

            def raw(statements=searching) -> None:
                for sql, params in statements:
                    conn.execute(sql, params).fetchall()

            ours, base = _time_pair(request, raw, repeat)
            matches = search_index.matching(
                Message.objects.filter(conversation__session_id__in=visible_session_ids(reader)),
                search_index.words(text),
            ).count()
            close_old_connections()
            rows.append(
                {
                    "search": f"{label} “{text}”",
                    "matches": matches,
                    "queries": len(captured),
                    "raw_queries": len(searching),
                    "p50_ms": ms(pct(ours, 50)),
                    "p95_ms": ms(pct(ours, 95)),
                    "raw_p50_ms": ms(pct(base, 50)),
                    "raw_p95_ms": ms(pct(base, 95)),
                }
            )
    return rows
