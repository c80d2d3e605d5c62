"""Severe-illness acceptance categories (upstream ``MKioskTy1..28``, current classification).

These are the meanings of getSrsillDissAceptncPosblInfoInqire since 2023; the older meanings used
by getEgytBassInfoInqire are different and are not mixed in here. Category 28 is the ER itself
("gate keeper"). ``symTypCod`` disease codes of ER messages map to categories 1..27.
"""

SEVERE_ILLNESS_CATEGORIES: dict[int, str] = {
    1: "[재관류중재술] 심근경색",
    2: "[재관류중재술] 뇌경색",
    3: "[뇌출혈수술] 거미막하출혈",
    4: "[뇌출혈수술] 거미막하출혈 외",
    5: "[대동맥응급] 흉부",
    6: "[대동맥응급] 복부",
    7: "[담낭담관질환] 담낭질환",
    8: "[담낭담관질환] 담도포함질환",
    9: "[복부응급수술] 비외상",
    10: "[장중첩/폐색] 영유아",
    11: "[응급내시경] 성인 위장관",
    12: "[응급내시경] 영유아 위장관",
    13: "[응급내시경] 성인 기관지",
    14: "[응급내시경] 영유아 기관지",
    15: "[저체중출생아] 집중치료",
    16: "[산부인과응급] 분만",
    17: "[산부인과응급] 산과수술",
    18: "[산부인과응급] 부인과수술",
    19: "[중증화상] 전문치료",
    20: "[사지접합] 수족지접합",
    21: "[사지접합] 수족지접합 외",
    22: "[응급투석] HD",
    23: "[응급투석] CRRT",
    24: "[정신과적응급] 폐쇄병동입원",
    25: "[안과적수술] 응급",
    26: "[영상의학혈관중재] 성인",
    27: "[영상의학혈관중재] 영유아",
    28: "응급실",
}

# Categories a crew can name as the patient's suspected condition (28 is the ER itself).
SUSPECTED_CATEGORY_CHOICES: list[tuple[int, str]] = [
    (number, label) for number, label in SEVERE_ILLNESS_CATEGORIES.items() if number != 28
]

DISEASE_CODE_CATEGORIES: dict[str, int] = {
    "Y0010": 1,
    "Y0020": 2,
    "Y0031": 3,
    "Y0032": 4,
    "Y0041": 5,
    "Y0042": 6,
    "Y0051": 7,
    "Y0052": 8,
    "Y0060": 9,
    "Y0070": 10,
    "Y0081": 11,
    "Y0082": 12,
    "Y0091": 13,
    "Y0092": 14,
    "Y0100": 15,
    "Y0111": 16,
    "Y0112": 17,
    "Y0113": 18,
    "Y0120": 19,
    "Y0131": 20,
    "Y0132": 21,
    "Y0141": 22,
    "Y0142": 23,
    "Y0150": 24,
    "Y0160": 25,
    "Y0171": 26,
    "Y0172": 27,
}
ER_DISEASE_CODE = "Y000"
