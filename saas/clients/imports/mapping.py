"""Guessing which column of an uploaded table holds which field, from its header.

Exact header names first (as Russian Excel, 1C, amoCRM and Bitrix24 write them, and in English),
then fragments of the normalised header. The fields themselves are the row rules' (`rules.py`).
"""
from __future__ import annotations

import re

# (field, exact header names, fragments of the normalised header; "a+b" needs both). Exact names win;
# fragments are tried in this order, so the specific ("Согласие на email") come before the general.
_EMAIL_BITS = "mail|элпочт|электроннаяпочт|электроннойпочт|емейл|имейл"
_CLIENT_RULES = [
    ("consent_email", "Согласие на email|Согласие на рассылку|Email consent|Consent email|Newsletter",
     "соглас+mail|соглас+почт|соглас+рассыл|consent+mail|подписк"),
    ("consent_sms", "Согласие на SMS|SMS consent|Consent SMS", "соглас+sms|соглас+смс|consent+sms"),
    ("consent_calls", "Согласие на звонки|Calls consent|Consent calls", "соглас+звон|consent+call"),
    ("passport_issued_by", "Кем выдан|Issued by", "кемвыдан|issuedby"),
    ("passport_issued_on", "Дата выдачи|Issue date|Issued on", "датавыдачи|issuedate|issuedon"),
    ("passport_division_code", "Код подразделения|Division code", "кодподразд|divisioncode"),
    ("passport_series", "Серия паспорта|Серия|Passport series", "серияпасп|паспортсерия|passportseries"),
    ("passport_number", "Номер паспорта|Паспорт|Серия и номер паспорта|Серия и номер|Passport|Passport number",
     "паспорт|passport"),
    ("birth_date", "Дата рождения|День рождения|Birth date|Birthday|Date of birth|ДР",
     "датарожд|деньрожд|birthdate|birthday|dateofbirth"),
    ("phone", "Телефон|Тел.|Моб.|Сотовый|Phone|Mobile|Tel", "телефон|phone|mobile|мобильн"),
    ("email", "E-mail|Email|Эл. почта|Электронная почта|Почта", _EMAIL_BITS),
    ("address", "Адрес|Address", "адрес|address"),
    ("tags", "Теги|Тег|Метки|Метка|Ярлыки|Tags|Tag|Labels", ""),
    ("note", "Комментарий|Примечание|Заметка|Заметки|Описание|Note|Notes|Comment|Comments",
     "коммент|примечан|comment"),
    ("product_groups", "Группы товаров|Группа товаров|Товарные группы|Товарная группа|Product groups",
     "группытовар|группатовар|товарн+групп|номенклатурн+групп|productgroup"),
    ("directions", "Направления|Направление|Directions", "направлен|direction"),
    ("full_name", ("ФИО|Клиент|Контрагент|Покупатель|Полное имя|Фамилия Имя Отчество|Наименование|Название|"
                   "Контакт|Основной контакт|Full name|Name|Client|Customer"),
     "фио|полноеимя|fullname|клиент|контрагент|покупател"),
    ("last_name", "Фамилия|Last name|Surname|Family name", "фамилия|lastname|surname"),
    ("first_name", "Имя|First name|Given name", "firstname"),
    ("middle_name", "Отчество|Middle name|Patronymic", "отчество|middlename|patronymic"),
]
_OPERATION_RULES = [
    ("client_phone", "Телефон клиента|Телефон|Тел.|Phone|Mobile|Client phone", "телефон|phone|mobile"),
    ("client_email", "Email клиента|E-mail|Email|Эл. почта|Электронная почта|Почта|Client email", _EMAIL_BITS),
    ("client_passport", "Паспорт клиента|Паспорт|Серия и номер паспорта|Passport|Client passport", "паспорт|passport"),
    ("paid_on", "Дата оплаты|Оплачено|Paid on|Paid|Payment date", "датаоплат|оплачен|paidon|paymentdate"),
    ("due_on", "Срок оплаты|Оплатить до|Due date|Due on|Due", "срок|due"),
    ("occurred_on", "Дата|Дата операции|Дата продажи|Date|Operation date", "дата|date"),
    ("amount", "Сумма|Сумма, руб.|Бюджет|Итого|Стоимость|Amount|Sum|Total", "сумм|amount|стоимост"),
    ("kind", "Тип|Вид|Вид операции|Тип операции|Kind|Type|Operation type", "видопер|типопер"),
    ("product_group", ("Группа товаров|Группа товара|Товарная группа|Номенклатурная группа|Группа|Категория|"
                       "Product group|Category"), "группатовар|товарн+групп|номенклатурн+групп|productgroup"),
    ("direction", "Направление|Direction", "направлен|direction"),
    ("note", "Комментарий|Примечание|Note|Comment", "коммент|примечан|comment|note"),
    ("client_name", "Клиент|ФИО|Покупатель|Контрагент|Client|Customer|Name|Client name",
     "фио|клиент|покупател|контрагент|client|customer"),
]


def _key(header: str) -> str:
    """'E-mail', 'Эл. почта ', 'Сумма, руб.' -> letters and digits only, lower case, ё as е."""
    return re.sub(r"[\W_]+", "", header.casefold().replace("ё", "е"))


def _compile(rules: list[tuple[str, str, str]]) -> tuple[dict[str, str], list[tuple[str, list[list[str]]]]]:
    exact: dict[str, str] = {}
    for name, headers, _ in rules:
        for header in headers.split("|"):
            exact.setdefault(_key(header), name)
    return exact, [(name, [p.split("+") for p in bits.split("|") if p]) for name, _, bits in rules]


_RULES = {"clients": _compile(_CLIENT_RULES), "operations": _compile(_OPERATION_RULES)}


def guess_mapping(headers: list[str], kind: str) -> dict[int, str]:
    """Column index -> field. A column's first matching rule decides it; a field already taken by an
    earlier column leaves this one unmapped (so only the first of several phones is used)."""
    if kind not in _RULES:
        raise ValueError(f"Unknown import kind: {kind!r}")
    exact, fragments = _RULES[kind]
    mapping: dict[int, str] = {}
    for index, header in enumerate(headers):
        key = _key(header)
        if not key:
            continue
        name = exact.get(key) or next(
            (f for f, patterns in fragments if any(all(p in key for p in pattern) for pattern in patterns)), None)
        if name and name not in mapping.values():
            mapping[index] = name
    return mapping
