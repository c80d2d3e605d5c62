// Severe-illness categories (upstream MKioskTy1..28): the Korean labels of
// domain/severe_illness.py SEVERE_ILLNESS_CATEGORIES; English ones are in i18n.js
// (category.<n>). 1–27 can be a patient's suspected category; 28 is the ER itself.

export const CATEGORIES_KO = {
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
};

export const SUSPECTED_CATEGORIES = Object.keys(CATEGORIES_KO).map(Number).filter((n) => n !== 28);
