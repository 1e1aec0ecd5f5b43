"""The import reader (imports/reader.py), the header mapping (imports/mapping.py), the value parsers
(core/values.py) and the row rules (rules.py), on real file bytes as Excel, 1C and CRMs write them."""
from __future__ import annotations

import io
import zipfile
from datetime import date, datetime
from decimal import Decimal

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saas.clients import rules
from saas.clients.contacts import normalise_email, normalise_phone
from saas.clients.imports import mapping, reader
from saas.clients.imports.mapping import guess_mapping
from saas.clients.imports.reader import ImportFileError, read_table
from saas.clients.rules import (
    CLIENT_FIELDS,
    OPERATION_FIELDS,
    normalise_client_row,
    normalise_operation_row,
    split_full_name,
)
from saas.core import values
from saas.core.values import formula_safe, formula_unsafe, parse_amount, parse_bool, parse_date

TODAY = date(2024, 6, 15)


def rows(table) -> list[list[str]]:
    return [list(r) for r in table.rows]


def file_error(data: bytes, filename: str = "") -> str:
    """The ImportFileError message, whether raised by read_table or while reading the rows."""
    with pytest.raises(ImportFileError) as caught:
        rows(read_table(data, filename))
    return str(caught.value)


def xlsx(*lines: list) -> bytes:
    book = openpyxl.Workbook()
    for line in lines:
        book.active.append(line)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# ---- reading files -------------------------------------------------------------------------


def test_cp1251_semicolon_file_from_russian_excel():
    text = ("ФИО;Телефон;Email;Дата рождения\r\n"
            "Иванов Иван Иванович;8 (916) 123-45-67;Ivanov@Mail.RU;01.02.1990\r\n"
            ";;;\r\n"
            "Петрова Мария;+7 925 000-11-22;;\r\n")
    table = read_table(text.encode("cp1251"), "clients.csv")
    assert (table.file_type, table.encoding, table.delimiter) == ("csv", "cp1251", ";")
    assert table.headers == ["ФИО", "Телефон", "Email", "Дата рождения"]
    got = list(table.rows)
    assert got == [["Иванов Иван Иванович", "8 (916) 123-45-67", "Ivanov@Mail.RU", "01.02.1990"],
                   ["Петрова Мария", "+7 925 000-11-22", "", ""]]
    assert [r.line for r in got] == [2, 4]  # the empty line 3 is skipped but still counted
    mapping = guess_mapping(table.headers, "clients")
    assert mapping == {0: "full_name", 1: "phone", 2: "email", 3: "birth_date"}
    result = normalise_client_row({f: got[0][i] for i, f in mapping.items()}, line=2, today=TODAY)
    assert result.errors == {}
    assert result.values == {"last_name": "Иванов", "first_name": "Иван", "middle_name": "Иванович",
                             "phone": "+79161234567", "email": "ivanov@mail.ru", "birth_date": date(1990, 2, 1)}


def test_utf8_bom_comma_file_with_quoted_cells():
    text = 'Name,Phone,Note\n"Smith, John",+79161234567,"two\nlines; and ""quotes"""\nAnna,,\n'
    table = read_table("\ufeff".encode() + text.encode(), "amo.csv")
    assert (table.encoding, table.delimiter) == ("utf-8-sig", ",")
    assert table.headers == ["Name", "Phone", "Note"]
    got = list(table.rows)
    assert got == [["Smith, John", "+79161234567", 'two\nlines; and "quotes"'], ["Anna", "", ""]]
    assert [r.line for r in got] == [2, 4]


def test_tab_separated_utf8_file():
    table = read_table("Фамилия\tИмя\tСумма, руб.\nИванов\tИван\t1 234,50\n".encode(), "export.txt")
    assert (table.encoding, table.delimiter) == ("utf-8", "\t")
    assert rows(table) == [["Иванов", "Иван", "1 234,50"]]


def test_utf16_unicode_text_from_excel():
    table = read_table("ФИО\tТелефон\r\nИванов\t89161234567\r\n".encode("utf-16"))
    assert (table.encoding, table.delimiter, rows(table)) == ("utf-16", "\t", [["Иванов", "89161234567"]])


@pytest.mark.parametrize("text, expected", [
    ("Дата;Сумма;Клиент\n01.02.2024;1 234,50;Иванов\n02.02.2024;99,90;Петров\n", ";"),
    ("Дата;Сумма, руб.;Клиент\n01.02.2024;1234,50;Иванов\n", ";"),
    ('name,note\nIvan,"a;b;c"\nOleg,"x;y"\n', ","),
    ("ФИО\nИванов, Иван\nПетров, Пётр\n", "\t"),  # one column: never split names on commas
])
def test_delimiter_detection(text, expected):
    assert read_table(text.encode()).delimiter == expected


def test_rows_are_padded_and_trailing_empty_columns_dropped():
    table = read_table(b"a;b;c;;;\n1\n1;2;3;;;;;;\n")
    assert table.headers == ["a", "b", "c"]
    assert rows(table) == [["1", "", ""], ["1", "2", "3"]]


def test_xlsx_with_date_and_numeric_phone():
    data = xlsx(["ФИО", "Телефон", "Дата рождения", "Сумма", "Визит"],
                ["Иванов Иван", 79161234567, date(1990, 2, 1), 1234.5, datetime(2024, 3, 1, 10, 30)],
                [None, None, None, None, None],
                ["Петров", 9251112233.0, None, 100.0, None])
    table = read_table(data, "clients.xlsx")
    assert (table.file_type, table.encoding, table.delimiter) == ("xlsx", None, None)
    assert table.headers == ["ФИО", "Телефон", "Дата рождения", "Сумма", "Визит"]
    got = list(table.rows)
    assert got == [["Иванов Иван", "79161234567", "1990-02-01", "1234.5", "2024-03-01 10:30:00"],
                   ["Петров", "9251112233", "", "100", ""]]
    assert [r.line for r in got] == [2, 4]
    assert normalise_phone(got[0][1]) == "+79161234567"
    assert parse_date(got[0][4]) == date(2024, 3, 1)


def test_truncated_xlsx_is_damaged():
    data = xlsx(["ФИО"], *[[f"Клиент {i}"] for i in range(200)])
    assert file_error(data[: len(data) // 2], "clients.xlsx") == "The XLSX file is damaged or truncated."


def test_xlsx_name_without_zip_content_is_damaged():
    assert file_error(b"just text", "clients.xlsx") == "The XLSX file is damaged or truncated."


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as member:
            chunk = bytes(1024 * 1024)
            for _ in range(300):
                member.write(chunk)
    return out.getvalue()


def test_zip_bomb_is_refused_before_unpacking(zip_bomb):
    assert len(zip_bomb) < 2 * 1024 * 1024
    message = file_error(zip_bomb, "bomb.xlsx")
    assert "zip bomb" in message and "too large when unpacked" in message


def test_zip_that_unpacks_past_twenty_uploads_is_refused(monkeypatch):
    """Members under 10 MB escape the ratio rule, so the total is what catches them."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for n in range(3):
            archive.writestr(f"xl/worksheets/sheet{n}.xml", bytes(1024 * 1024))
    monkeypatch.setattr(reader, "MAX_BYTES", 100_000)  # 3 MB unpacked > 20 x 100 KB
    assert len(out.getvalue()) < 100_000
    assert "zip bomb" in file_error(out.getvalue())


def test_header_only_xlsx_has_no_rows():
    table = read_table(xlsx(["ФИО", "Телефон"]))
    assert table.headers == ["ФИО", "Телефон"] and rows(table) == []


def test_binary_files_are_refused():
    assert file_error(bytes(range(256)) * 40, "photo.csv") == "The file is not a text table (binary data?)."
    # no NUL bytes, not UTF-8, and cp1251 makes control-character soup of it
    assert file_error(bytes(range(1, 32)) * 100 + b"\xff") == "The file is not a text table (binary data?)."


def test_old_xls_and_html_pages_get_their_own_message():
    assert ".xls" in file_error(reader.OLE_MAGIC + bytes(600), "old.xls")
    assert "web page" in file_error(b"<html><body><table><tr><td>1</td></tr></table>", "bitrix.xls")


def test_too_many_columns():
    data = (";".join(f"c{i}" for i in range(10_001)) + "\n").encode()
    message = file_error(data)
    assert "Line 1" in message and "10,001 columns" in message and "limit is 500" in message


def test_cell_of_one_megabyte():
    data = b"a;b\n1;" + b"x" * 1024 * 1024 + b"\n"
    message = file_error(data)
    assert message.startswith("Line 2:") and "longer than 10,000 characters" in message


def test_cell_just_over_the_limit_and_unclosed_quote():
    assert "longer than 10,000" in file_error(b"a;b\n1;" + b"x" * 10_001 + b"\n")
    message = file_error(b'a;b\n1;2\n3;"unclosed\n4;5\n')
    assert message.startswith("Line 3:") and "never closed" in message


def test_quote_in_the_wrong_place_names_the_line():
    assert file_error(b'a,b\n1,2\n3,"x"y\n').startswith("Line 3:")


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\r\n \r\n;;;\r\n"])
def test_empty_file(data):
    assert file_error(data) == "The file is empty."


def test_size_and_row_limits(monkeypatch):
    monkeypatch.setattr(reader, "MAX_BYTES", 10)
    assert file_error(b"a;b\n1;2\n3;4\n") == "The file is larger than 100 MB."
    monkeypatch.setattr(reader, "MAX_ROWS", 2)
    table = read_table(b"a\n1\n2\n3\n")
    assert next(table.rows) == ["1"]
    assert "more than 2 rows" in file_error(b"a\n1\n2\n3\n")


# ---- mapping -------------------------------------------------------------------------------


def test_mapping_russian_client_headers():
    headers = ["Фамилия", "Имя", "Отчество", "День рождения", "Мобильный телефон", "Рабочий телефон", "Эл. почта",
               "Почтовый адрес", "Серия паспорта", "Номер паспорта", "Кем выдан", "Дата выдачи",
               "Код подразделения", "Согласие на рассылку", "Согласие на SMS", "Согласие на звонки", "Метки",
               "Примечание", "Группы товаров", "Направления", "Категория", "Что-то своё"]
    assert guess_mapping(headers, "clients") == {
        0: "last_name", 1: "first_name", 2: "middle_name", 3: "birth_date", 4: "phone", 6: "email", 7: "address",
        8: "passport_series", 9: "passport_number", 10: "passport_issued_by", 11: "passport_issued_on",
        12: "passport_division_code", 13: "consent_email", 14: "consent_sms", 15: "consent_calls", 16: "tags",
        17: "note", 18: "product_groups", 19: "directions"}


def test_mapping_english_and_crm_client_headers():
    headers = [" Full Name ", "PHONE", "Mobile", "E-mail", "Birthday", "Passport", "Tags", "Comment", "Address"]
    assert guess_mapping(headers, "clients") == {0: "full_name", 1: "phone", 3: "email", 4: "birth_date",
                                                 5: "passport_number", 6: "tags", 7: "note", 8: "address"}
    bitrix = ["Контакт", "Рабочий телефон", "Рабочий e-mail", "Согласие на email-рассылку", "Адрес электронной почты"]
    assert guess_mapping(bitrix, "clients") == {0: "full_name", 1: "phone", 2: "email", 3: "consent_email"}
    assert guess_mapping(["Клиент", "Контрагент", "Name"], "clients") == {0: "full_name"}
    assert guess_mapping(["Place of birth", "Место рождения"], "clients") == {}


def test_mapping_operation_headers():
    russian = ["Дата", "Вид операции", "Сумма, руб.", "Клиент", "Телефон клиента", "Email", "Паспорт",
               "Группа товаров", "Направление", "Срок оплаты", "Дата оплаты", "Комментарий"]
    assert guess_mapping(russian, "operations") == dict(enumerate(
        ["occurred_on", "kind", "amount", "client_name", "client_phone", "client_email", "client_passport",
         "product_group", "direction", "due_on", "paid_on", "note"]))
    english = ["Date", "Type", "Amount", "Customer", "Phone", "Due date", "Paid on", "Product group"]
    assert guess_mapping(english, "operations") == {0: "occurred_on", 1: "kind", 2: "amount", 3: "client_name",
                                                    4: "client_phone", 5: "due_on", 6: "paid_on", 7: "product_group"}
    one_c = ["Дата документа", "Номенклатурная группа", "Направление деятельности", "Сумма документа"]
    assert guess_mapping(one_c, "operations") == {0: "occurred_on", 1: "product_group", 2: "direction", 3: "amount"}
    assert guess_mapping(["Товарная группа"], "operations") == {0: "product_group"}
    assert guess_mapping(["Товарные группы"], "clients") == {0: "product_groups"}
    with pytest.raises(ValueError):
        guess_mapping(["x"], "invoices")


def test_mapped_fields_are_known_fields():
    headers = [h for _, names, _ in mapping._CLIENT_RULES for h in names.split("|")]
    assert set(guess_mapping(headers, "clients").values()) <= set(CLIENT_FIELDS)
    headers = [h for _, names, _ in mapping._OPERATION_RULES for h in names.split("|")]
    assert set(guess_mapping(headers, "operations").values()) == set(OPERATION_FIELDS)


# ---- values --------------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    ("Иванов Иван Иванович", ("Иванов", "Иван", "Иванович")),
    ("  Иванов   Иван  ", ("Иванов", "Иван", "")),
    ("Мария", ("", "Мария", "")),
    ("Мамедов Ахмед Али оглы", ("Мамедов", "Ахмед", "Али оглы")),
    ("Иванов И.И.", ("Иванов", "И.", "И.")),
    ("Иванов И. И.", ("Иванов", "И.", "И.")),
    ("И.И. Иванов", ("Иванов", "И.", "И.")),
    ("", ("", "", "")),
])
def test_split_full_name(value, expected):
    assert split_full_name(value) == expected


@settings(deadline=None, max_examples=50)
@given(st.lists(st.text(alphabet="абвгдежзиклмнопрстуфхцчшщэюяАБВ-", min_size=2, max_size=8), min_size=2, max_size=5))
def test_split_full_name_keeps_every_word(words):
    assert " ".join(p for p in split_full_name("  ".join(words)) if p) == " ".join(words)


@pytest.mark.parametrize("value, expected", [
    ("2024-01-31", date(2024, 1, 31)), ("31.01.2024", date(2024, 1, 31)), ("1.2.2024", date(2024, 2, 1)),
    ("31/01/2024", date(2024, 1, 31)), ("31.01.24", date(2024, 1, 31)), ("31.01.25", date(1925, 1, 31)),
    ("2024-01-31 23:59", date(2024, 1, 31)), ("2024-01-31 10:00:05", date(2024, 1, 31)),
    ("31.01.2024 10:00", date(2024, 1, 31)), ("45123", date(2023, 7, 16)), ("1", date(1900, 1, 1)),
    ("61", date(1900, 3, 1)), ("01.02.1990 г.", date(1990, 2, 1)), ("2024-01-31T08:00:00", date(2024, 1, 31)),
])
def test_parse_date(value, expected):
    assert parse_date(value, today=TODAY) == expected


@pytest.mark.parametrize("value", ["", "завтра", "31.02.2024", "2024-13-01", "80001", "0", "60", "12.2024",
                                   "2024-01-31 25:00", "31.01.2024 10:61", "79161234567", "1.5"])
def test_parse_date_refuses(value):
    with pytest.raises(ValueError, match="Not a valid date"):
        parse_date(value)


@pytest.mark.parametrize("value, expected", [
    ("1 234,50", "1234.50"), ("1234.50", "1234.50"), ("1\xa0234,5 ₽", "1234.50"), ("₽1,234.50", "1234.50"),
    ("-100", "-100"), ("1.234.567,89", "1234567.89"), ("1,234", "1234"), ("99,9", "99.90"), ("0,005", "0.01"),
    ("100 руб.", "100"), ("(250)", "-250"), ("−5", "-5"), ("+12", "12"), ("12", "12"),
])
def test_parse_amount(value, expected):
    assert parse_amount(value) == Decimal(expected)
    assert parse_amount(value).as_tuple().exponent == -2


@pytest.mark.parametrize("value", ["", "abc", "12abc", "1e5", "NaN", "1,2,3", "--5", "(5", "-", "₽", "1" * 40])
def test_parse_amount_refuses(value):
    with pytest.raises(ValueError):
        parse_amount(value)


@settings(deadline=None, max_examples=50)
@given(st.decimals(min_value=0, max_value=10 ** 9, places=2))
def test_parse_amount_reads_russian_formatting(amount):
    russian = f"{amount:,.2f}".replace(",", "\xa0").replace(".", ",")
    assert parse_amount(russian) == amount
    assert parse_amount(f"{amount:,.2f}") == amount


@pytest.mark.parametrize("value", ["8 (916) 123-45-67", "+7 916 123 45 67", "79161234567", "9161234567"])
def test_normalise_phone(value):
    assert normalise_phone(value) == "+79161234567"


@pytest.mark.parametrize("value", ["", "123", "телефон", "+7 916 123", "8 800 000 00 00 00 00"])
def test_normalise_phone_refuses(value):
    with pytest.raises(ValueError, match="Not a valid phone number"):
        normalise_phone(value)


def test_normalise_email():
    assert normalise_email(" Ivan.Petrov@Example.COM ") == "ivan.petrov@example.com"
    for bad in ("", "ivan", "ivan@", "@x.ru", "a b@x.ru"):
        with pytest.raises(ValueError, match="Not a valid email address"):
            normalise_email(bad)


def test_parse_bool():
    for value in ("да", "Да", "yes", "TRUE", "1", "+", "y", "Д"):
        assert parse_bool(value) is True
    for value in ("нет", "no", "false", "0", "-", "n", "н", "", "  "):
        assert parse_bool(value) is False
    with pytest.raises(ValueError):
        parse_bool("может быть")


def test_formula_safe():
    """Only what a spreadsheet would run: a phone and a negative amount reach other systems as they are."""
    for value in ("=SUM(A1)", "=1+1", "@cmd", "\tx", "\rx", "-2+3", "+tag", "-A1", "+7 (916) 123-45-67", "-"):
        assert formula_safe(value) == "'" + value
    for value in ("", "Иванов", "1+1", "'=x", "+79161234567", "-1", "-1234.50", "-12,5"):
        assert formula_safe(value) == value
    for value in ("=1+1", "+tag", "@x", "-2+3"):
        assert formula_unsafe(formula_safe(value)) == value
    assert formula_unsafe("'+79161234567") == "+79161234567"  # an older export's phone


# ---- client rows ---------------------------------------------------------------------------


def client(**raw: str):
    return normalise_client_row(raw, line=7, today=TODAY)


def test_client_row_full_and_normalised():
    result = client(last_name=" Петрова ", first_name="Мария", phone="8 916 123-45-67, 8 925 000 11 22",
                    email="M@X.RU", birth_date="1985-05-05", address="  Москва, ул. Ленина, 1 ",
                    passport_number="4510 123456", passport_issued_by="ОВД  района", passport_issued_on="10.05.2005",
                    passport_division_code="770001", consent_email="да", consent_sms="нет", consent_calls="",
                    tags="VIP, опт; vip | новый", note=" строка 1\nстрока 2 ", product_groups="Обувь;Сумки",
                    directions="Розница", unknown="ignored")
    assert result.line == 7 and result.errors == {}
    assert result.values == {
        "last_name": "Петрова", "first_name": "Мария", "phone": "+79161234567", "email": "m@x.ru",
        "birth_date": date(1985, 5, 5), "address": "Москва, ул. Ленина, 1", "passport_series": "4510",
        "passport_number": "123456", "passport_issued_by": "ОВД района", "passport_issued_on": date(2005, 5, 10),
        "passport_division_code": "770-001", "consent_email": True, "consent_sms": False,
        "tags": ["VIP", "опт", "новый"], "note": "строка 1\nстрока 2", "product_groups": ["Обувь", "Сумки"],
        "directions": ["Розница"]}


def test_client_row_names():
    assert client(full_name="Иванов Иван").values == {"last_name": "Иванов", "first_name": "Иван"}
    assert client(full_name="Иванов Иван", first_name="Ваня").values == {"first_name": "Ваня"}
    assert client(full_name="  ", phone="89161234567").errors == {
        "name": "A client needs at least a last or first name."}


@pytest.mark.parametrize("raw, errors", [
    ({"phone": "12345"}, {"phone": "Not a valid phone number."}),
    ({"email": "ivan@"}, {"email": "Not a valid email address."}),
    ({"birth_date": "31.02.1990"}, {"birth_date": "Not a valid date: use DD.MM.YYYY or YYYY-MM-DD."}),
    ({"birth_date": "16.06.2024"}, {"birth_date": "The birth date cannot be in the future."}),
    ({"birth_date": "31.12.1899"}, {"birth_date": "The birth date cannot be before 1900."}),
    ({"passport_series": "45", "passport_number": "123456"},
     {"passport_series": "The passport series must be 4 digits."}),
    ({"passport_series": "4510", "passport_number": "12345"},
     {"passport_number": "The passport number must be 6 digits."}),
    ({"passport_number": "4510 12345"}, {"passport_number": "The passport number must be 6 digits."}),
    ({"passport_division_code": "77-0001"}, {"passport_division_code": "The division code must look like 123-456."}),
    ({"passport_issued_on": "01.01.2030"}, {"passport_issued_on": "The issue date cannot be in the future."}),
    ({"birth_date": "01.01.2000", "passport_issued_on": "01.01.1999"},
     {"passport_issued_on": "The issue date must be after the birth date."}),
    ({"consent_sms": "возможно"}, {"consent_sms": "Expected yes or no."}),
])
def test_client_row_errors(raw, errors):
    result = client(last_name="Иванов", **raw)
    assert result.errors == errors
    assert not set(errors) & set(result.values)
    assert result.values["last_name"] == "Иванов"


# ---- operation rows ------------------------------------------------------------------------


def operation(**raw: str):
    return normalise_operation_row(raw, line=3, today=TODAY)


def test_operation_row_full():
    result = operation(client_phone="8 (916) 123-45-67", client_email="A@B.RU", client_passport="45 10 123456",
                       client_name="Иванов  Иван", kind="Услуга", occurred_on="01.06.2024", amount="1 500,00 ₽",
                       product_group="Обувь", direction="Розница", due_on="2024-07-01", paid_on="02.06.2024",
                       note="по акции")
    assert result.errors == {}
    assert result.values == {
        "client_phone": "+79161234567", "client_email": "a@b.ru", "client_passport": "4510123456",
        "client_name": "Иванов Иван", "kind": "service", "occurred_on": date(2024, 6, 1),
        "amount": Decimal("1500.00"), "product_group": "Обувь", "direction": "Розница",
        "due_on": date(2024, 7, 1), "paid_on": date(2024, 6, 2), "note": "по акции"}


@pytest.mark.parametrize("kind, amount, expected", [
    ("", "100", ("sale", "100")), ("продажа", "100", ("sale", "100")), ("Покупка", "1", ("sale", "1")),
    ("sale", "5", ("sale", "5")), ("service", "5", ("service", "5")), ("возврат", "50", ("return", "50")),
    ("", "-250,5", ("return", "250.50")), ("Возврат", "-50", ("return", "50")),
])
def test_operation_kinds_and_returns(kind, amount, expected):
    result = operation(client_name="Иванов", occurred_on="01.06.2024", kind=kind, amount=amount)
    assert result.errors == {}
    assert (result.values["kind"], result.values["amount"]) == (expected[0], Decimal(expected[1]))


@pytest.mark.parametrize("raw, errors", [
    ({"kind": "подарок"}, {"kind": "Unknown operation type «подарок»: use sale, service or return."}),
    ({"kind": "продажа", "amount": "-100"}, {"amount": rules.NEGATIVE_AMOUNT}),
    ({"amount": "0"}, {"amount": "The amount must be a positive number."}),
    ({"amount": "сто"}, {"amount": "Not a number: сто"}),
    ({"amount": ""}, {"amount": "The amount is required."}),
    ({"occurred_on": ""}, {"occurred_on": "The operation date is required."}),
    ({"occurred_on": "2024-06-16"}, {"occurred_on": "The operation date 2024-06-16 is after today (2024-06-15)."}),
    ({"occurred_on": "16.06.2024 10:30"},
     {"occurred_on": "The operation date 16.06.2024 10:30 is after today (2024-06-15)."}),
    ({"paid_on": "16.06.2024"}, {"paid_on": "The payment date cannot be in the future."}),
    ({"occurred_on": "вчера"}, {"occurred_on": "Not a valid date: use DD.MM.YYYY or YYYY-MM-DD."}),
    ({"due_on": "скоро"}, {"due_on": "Not a valid date: use DD.MM.YYYY or YYYY-MM-DD."}),
    ({"client_name": ""}, {"client": "Each operation needs a client: phone, email, passport or name."}),
    ({"client_phone": "000"}, {"client_phone": "Not a valid phone number."}),
    ({"client_email": "x@"}, {"client_email": "Not a valid email address."}),
    ({"client_passport": "4510 12345"}, {"client_passport": "The passport must be 10 digits (series and number)."}),
])
def test_operation_row_errors(raw, errors):
    base = {"client_name": "Иванов", "occurred_on": "01.06.2024", "amount": "100"}
    result = operation(**{**base, **raw})
    assert result.errors == errors
    assert not set(errors) & set(result.values)


def test_operation_dates_up_to_today_pass_and_a_due_date_may_be_in_the_future():
    result = operation(client_name="Иванов", amount="100", occurred_on="15.06.2024", due_on="15.07.2024",
                       paid_on="15.06.2024")
    assert result.errors == {}
    assert (result.values["occurred_on"], result.values["due_on"]) == (TODAY, date(2024, 7, 15))


def test_a_future_operation_date_is_translated_whole_with_its_value():
    """The row's reason names the bad value and reads in the company's language (the message keeps
    its msgid and values for `translated`), also after the forked reader pickles it back."""
    import pickle

    from saas.core.i18n import gettext_, set_locale

    error = operation(client_name="Иванов", amount="100", occurred_on="01.01.2030").errors["occurred_on"]
    assert pickle.loads(pickle.dumps(error)) == error
    assert pickle.loads(pickle.dumps(error)).params == {"value": "01.01.2030", "today": "2024-06-15"}
    try:
        set_locale("ru")
        assert values.translated(pickle.loads(pickle.dumps(error)), gettext_) == \
            "Дата операции 01.01.2030 позже сегодняшнего дня (2024-06-15)."
        assert values.translated("The amount is required.", gettext_) == "Укажите сумму."
        set_locale("en")
        assert values.translated(error, gettext_) == "The operation date 01.01.2030 is after today (2024-06-15)."
    finally:
        set_locale(None)


def test_one_future_date_rule_for_imports_and_the_operation_form():
    """The form/API validator (operations.check_operation) goes through the import's rules, not a copy."""
    from saas.clients import operations

    assert operations.check_operation_row is rules.check_operation_row
    assert rules.future_operation_date(TODAY, "15.06.2024", TODAY) is None
    assert rules.future_operation_date(date(2024, 6, 16), " 16.06.2024 ", TODAY) == \
        "The operation date 16.06.2024 is after today (2024-06-15)."
    assert rules.check_operation_row({"kind": "sale", "occurred_on": "16.06.2024", "amount": "1"},
                                     today=TODAY).errors == {
        "occurred_on": "The operation date 16.06.2024 is after today (2024-06-15)."}


HOSTILE_OPERATIONS = [
    {"amount": "-500"}, {"kind": "", "amount": "-500"}, {"kind": "return", "amount": "-500"},
    {"kind": "sale", "amount": "-500"}, {"kind": "service", "amount": "(1 200,50)"}, {"amount": "(1 200,50)"},
    {"amount": "−100"}, {"amount": "-0"}, {"amount": "0"}, {"amount": "0.004"}, {"amount": "1e5"},
    {"amount": "NaN"}, {"amount": "Infinity"}, {"amount": "999999999999.995"}, {"amount": "999 999 999 999,99"},
    {"amount": "1" * 40}, {"amount": "1,234"}, {"amount": "=1+1"}, {"kind": "ПРОДАЖА", "amount": "10"},
    {"kind": "gift", "amount": "-5"}, {"kind": "sale'; DROP TABLE operations; --"}, {"occurred_on": "31.02.2024"},
    {"occurred_on": "45292"}, {"occurred_on": "0"}, {"occurred_on": "01.01.2999"}, {"occurred_on": ""},
    {"paid_on": "16.06.2024"}, {"due_on": "01.01.2999"}, {"note": "  =HYPERLINK(\"http://x\")  "},
    {"note": "x" * 10_001}, {"note": "строка 1\r\nстрока 2"}, {"amount": ""},
]


@pytest.mark.parametrize("raw", HOSTILE_OPERATIONS)
def test_the_form_row_is_the_import_row_without_the_client_key(raw):
    """check_operation_row (form, API) and normalise_operation_row (import, restore) agree on every
    field but the client's key, which the form and the API take from the address."""
    row = {"occurred_on": "01.06.2024", "amount": "100", **raw}
    form = rules.check_operation_row(row, today=TODAY)
    imported = operation(**row, client_phone="+79161234567")
    assert imported.values.pop("client_phone") == "+79161234567"
    assert (form.values, form.errors) == (imported.values, imported.errors)
    assert form.errors or {"kind", "amount", "occurred_on"} <= set(form.values)


def test_negative_amounts_one_rule():
    """No kind or "return": a return of that amount; a negative sale or service is refused saying
    how to record a return; zero is refused."""
    base = {"client_name": "Иванов", "occurred_on": "01.06.2024"}
    for kind in ("", "return", "возврат"):
        result = operation(**base, kind=kind, amount="-12,50")
        assert (result.errors, result.values["kind"], result.values["amount"]) == ({}, "return", Decimal("12.50"))
    for kind in ("sale", "service", "продажа"):
        assert operation(**base, kind=kind, amount="-1").errors == {"amount": rules.NEGATIVE_AMOUNT}
    assert operation(**base, amount="-0").errors == {"amount": "The amount must be a positive number."}
    assert operation(**base, kind="gift", amount="-1").errors == {
        "kind": "Unknown operation type «gift»: use sale, service or return.",
        "amount": "The amount must be a positive number."}


def test_an_amount_that_rounds_past_the_column_is_too_large():
    assert parse_amount("999999999999.99") == Decimal("999999999999.99")
    for value in ("999999999999.995", "1000000000000", "1" * 40):
        with pytest.raises(ValueError, match="too large"):
            parse_amount(value)
