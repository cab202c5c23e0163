import numpy as np
import pandas as pd
import pytest

from app.data.errors import UserInputError
from app.data.volcanoes import (
    DEFAULT_PATH,
    find_volcano,
    load_volcanoes,
    normalise_name,
    search_volcanoes,
    suggest_names,
)

COLUMNS = [
    "number",
    "name",
    "country",
    "type",
    "last_eruption",
    "region",
    "subregion",
    "latitude",
    "longitude",
    "elevation_m",
]


def test_table_shape_and_types():
    table = load_volcanoes()
    assert list(table.columns) == COLUMNS
    assert len(table) == 1422
    assert table["number"].dtype == np.int64
    assert table["number"].is_unique
    assert table["latitude"].between(-90, 90).all()
    assert table["longitude"].between(-180, 180).all()
    assert not table[["name", "country", "latitude", "longitude", "elevation_m"]].isna().any().any()


def test_first_row_is_read_past_the_banner():
    row = load_volcanoes().iloc[0]
    assert row["number"] == 210010
    assert row["name"] == "West Eifel Volcanic Field"
    assert row["country"] == "Germany"
    assert row["last_eruption"] == "8300 BCE"
    assert row["elevation_m"] == 600


def test_load_is_cached_but_returns_copies():
    a = load_volcanoes()
    a.loc[0, "name"] = "changed"
    assert load_volcanoes().loc[0, "name"] == "West Eifel Volcanic Field"
    assert load_volcanoes(DEFAULT_PATH).equals(load_volcanoes(str(DEFAULT_PATH)))


@pytest.mark.parametrize(
    "query, number",
    [
        ("soufriere st vincent", 360150),
        ("La Soufrière", 360150),
        ("la soufriere", 360150),
        ("SOUFRIÈRE ST. VINCENT", 360150),
        ("st vincent", 360150),
        ("etna", 211060),
        ("Mount Etna", 211060),
        ("Etna volcano", 211060),
        ("hunga tonga", 243040),
        ("Hunga Tonga-Hunga Ha'apai", 243040),
        ("Piton de la Fournaise", 233020),
        ("fournaise, piton de la", 233020),
        ("Soufrière Hills", 360050),
        ("La Grande Soufrière", 360060),
        (360150, 360150),
        ("243040", 243040),
        (np.int64(211060), 211060),
    ],
)
def test_find_volcano(query, number):
    assert find_volcano(query)["number"] == number


def test_la_soufriere_record():
    row = find_volcano("La Soufrière")
    assert isinstance(row, pd.Series)
    assert row["name"] == "Soufriere St. Vincent"
    assert row["country"] == "Saint Vincent and the Grenadines"
    assert row["latitude"] == pytest.approx(13.33)
    assert row["longitude"] == pytest.approx(-61.18)
    assert row["elevation_m"] == 1220


def test_other_scenario_volcanoes():
    tonga = find_volcano("hunga tonga")
    assert (tonga["latitude"], tonga["longitude"]) == pytest.approx((-20.536, -175.382))
    etna = find_volcano("etna")
    assert (etna["latitude"], etna["longitude"], etna["elevation_m"]) == pytest.approx((37.748, 14.999, 3320))
    piton = find_volcano("piton de la fournaise")
    assert (piton["latitude"], piton["longitude"]) == pytest.approx((-21.244, 55.708))


def test_unknown_name_suggests_close_names():
    with pytest.raises(UserInputError, match="No volcano is named 'Etnna'") as error:
        find_volcano("Etnna")
    assert "Did you mean: Etna" in str(error.value)
    with pytest.raises(UserInputError, match="Pinatubo"):
        find_volcano("Pinatuba")


def test_unknown_name_without_close_match():
    with pytest.raises(UserInputError, match="No volcano is named 'qwxzv'"):
        find_volcano("qwxzv")


def test_ambiguous_name_lists_candidates_with_numbers():
    with pytest.raises(UserInputError, match="matches 3 volcanoes") as error:
        find_volcano("soufriere")
    message = str(error.value)
    for number in (360050, 360060, 360150):
        assert f"GVP {number}" in message
    with pytest.raises(UserInputError, match="Sumbing .*GVP 261180.*GVP 263220"):
        find_volcano("Sumbing")


def test_unknown_number_and_empty_name():
    with pytest.raises(UserInputError, match="no volcano number 999999"):
        find_volcano(999999)
    with pytest.raises(UserInputError, match="empty"):
        find_volcano("  -- ")


def test_find_in_a_given_table():
    table = load_volcanoes().iloc[[0, 1]]
    assert find_volcano("chaine des puys", table)["number"] == 210020
    with pytest.raises(UserInputError):
        find_volcano("etna", table)


def test_search_ranks_prefix_first():
    hits = search_volcanoes("sou")
    assert len(hits) == 10
    assert set(hits["name"].iloc[:3]) == {"Soufriere Hills", "Soufriere Guadeloupe", "Soufriere St. Vincent"}
    assert all(normalise_name(n).startswith("sou") for n in hits["name"])


def test_search_finds_inverted_names_accents_and_numbers():
    assert search_volcanoes("piton de la f")["number"].iloc[0] == 233020
    assert search_volcanoes("Soufrière", limit=3)["number"].tolist() == [360060, 360050, 360150]
    assert search_volcanoes("36015")["number"].iloc[0] == 360150
    assert search_volcanoes("la soufriere")["number"].iloc[0] == 360150


def test_search_falls_back_to_spelling_and_limits():
    assert search_volcanoes("etnna")["name"].iloc[0] == "Etna"
    assert len(search_volcanoes("a", limit=4)) == 4
    assert search_volcanoes("").empty
    assert suggest_names("Vesuvio")[0] == "Vesuvius"


def test_normalise_name():
    assert normalise_name("  La Soufrière, St. Vincent ") == "la soufriere st vincent"
    assert normalise_name("Saint Helens") == "st helens"
    assert normalise_name("Hunga Tonga-Hunga Ha'apai") == "hunga tonga hunga haapai"
